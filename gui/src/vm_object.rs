//! A VM as an item of the window's `gio::ListStore`.

use gtk::glib;
use gtk::subclass::prelude::*;

use crate::client::VmInfo;

mod imp {
    use std::cell::RefCell;

    use gtk::glib;
    use gtk::prelude::*;
    use gtk::subclass::prelude::*;

    use crate::client::VmInfo;

    #[derive(Default, glib::Properties)]
    #[properties(wrapper_type = super::VmObject)]
    pub struct VmObject {
        pub info: RefCell<VmInfo>,
        /// Exposed as a property so a `gtk::StringFilter` can search by it.
        #[property(get = Self::name)]
        name: std::marker::PhantomData<String>,
    }

    impl VmObject {
        fn name(&self) -> String {
            self.info.borrow().name.clone()
        }
    }

    #[glib::object_subclass]
    impl ObjectSubclass for VmObject {
        const NAME: &'static str = "VmCloneVmObject";
        type Type = super::VmObject;
    }

    #[glib::derived_properties]
    impl ObjectImpl for VmObject {}
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

    pub fn id(&self) -> String {
        self.imp().info.borrow().id.clone()
    }
}
