//! Whether a running domain's guest agent is there to ask: libvirt writes
//! the state of the agent's channel into the live XML
//! (`<channel><target name='org.qemu.guest_agent.0' state='connected'/>`),
//! following the guest opening and closing its end.

use quick_xml::events::Event;
use quick_xml::Reader;

use super::tag::{attr, name};

const AGENT_CHANNEL: &str = "org.qemu.guest_agent.0";

/// Whether the live domain XML shows a connected guest agent.
pub fn guest_agent_connected(live_xml: &str) -> bool {
    let mut reader = Reader::from_str(live_xml);
    let mut in_channel = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if name(&e) == "channel" => in_channel = true,
            Ok(Event::End(e)) if e.name().into_inner() == "channel" => in_channel = false,
            Ok(Event::Start(e) | Event::Empty(e)) if in_channel && name(&e) == "target" => {
                let value = |key| attr(&e, key).ok().flatten();
                if value("name").as_deref() == Some(AGENT_CHANNEL) {
                    return value("state").as_deref() == Some("connected");
                }
            }
            Ok(Event::Eof) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_channel(state: &str) -> String {
        format!(
            "<domain><devices><channel type='unix'><source mode='bind' path='/x'/>\
             <target type='virtio' name='org.qemu.guest_agent.0'{state}/></channel>\
             <channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0' state='connected'/></channel>\
             </devices></domain>"
        )
    }

    #[test]
    fn only_a_connected_agent_channel_counts() {
        assert!(guest_agent_connected(&with_channel(" state='connected'")));
        assert!(!guest_agent_connected(&with_channel(
            " state='disconnected'"
        )));
        // The inactive definition has no state: nobody knows.
        assert!(!guest_agent_connected(&with_channel("")));
        assert!(!guest_agent_connected("<domain><devices/></domain>"));
    }
}
