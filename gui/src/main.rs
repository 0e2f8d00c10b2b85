use gtk::glib;
use gtk::prelude::*;

fn main() -> glib::ExitCode {
    vmclone::i18n::init();
    vmclone::register_resources();
    // The system bus (DBUS_SYSTEM_BUS_ADDRESS when set); its first ListVms
    // runs while GTK starts.
    let client = vmclone::client::Client::start(None);
    gtk::glib::set_application_name(&gettextrs::gettext("VM Clone"));
    vmclone::application::new(Some(client)).run()
}
