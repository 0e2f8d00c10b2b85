//! A VM as an item of the window's `gio::ListStore`.

use gtk::glib;
use gtk::prelude::*;
use gtk::subclass::prelude::*;

use crate::client::VmInfo;

mod imp {
    use std::cell::RefCell;

    use gtk::glib;
    use gtk::subclass::prelude::*;

    use crate::client::VmInfo;

    #[derive(Default)]
    pub struct VmObject {
        pub info: RefCell<VmInfo>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for VmObject {
        const NAME: &'static str = "VmCloneVmObject";
        type Type = super::VmObject;
    }

    impl ObjectImpl for VmObject {
        fn signals() -> &'static [glib::subclass::Signal] {
            static SIGNALS: std::sync::OnceLock<Vec<glib::subclass::Signal>> =
                std::sync::OnceLock::new();
            // "changed": the VM's description was replaced; rows showing it redraw.
            SIGNALS.get_or_init(|| vec![glib::subclass::Signal::builder("changed").build()])
        }
    }
}

glib::wrapper! {
    pub struct VmObject(ObjectSubclass<imp::VmObject>);
}

impl VmObject {
    pub fn new(info: VmInfo) -> VmObject {
        let obj: VmObject = glib::Object::new();
        obj.imp().info.replace(info);
        obj
    }

    pub fn info(&self) -> VmInfo {
        self.imp().info.borrow().clone()
    }

    /// Replaces the description in place, so the list keeps this item (and
    /// its selection and focus); rows showing it hear "changed".
    pub fn set_info(&self, info: VmInfo) {
        self.imp().info.replace(info);
        self.emit_by_name::<()>("changed", &[]);
    }

    /// `f` on the description, without copying it (filters read every VM).
    pub fn with_info<R>(&self, f: impl FnOnce(&VmInfo) -> R) -> R {
        f(&self.imp().info.borrow())
    }

    /// Calls `f` whenever `set_info` changed this VM.
    pub fn connect_changed(&self, f: impl Fn(&VmObject) + 'static) -> glib::SignalHandlerId {
        self.connect_local("changed", false, move |args| {
            let vm = args[0].get::<VmObject>().expect("a VmObject");
            f(&vm);
            None
        })
    }

    pub fn id(&self) -> String {
        self.imp().info.borrow().id.clone()
    }

    pub fn name(&self) -> String {
        self.imp().info.borrow().name.clone()
    }
}
