use gtk::glib;
use gtk::prelude::*;

fn main() -> glib::ExitCode {
    vmclone::i18n::init();
    vmclone::register_resources();
    gtk::glib::set_application_name(&gettextrs::gettext("VM Clone"));
    // None: the system bus, or DBUS_SYSTEM_BUS_ADDRESS when set.
    vmclone::application::new(None).run()
}
