//! The clone's identity: a UUID, one MAC per interface and a genid, none of
//! them in use by any domain or reserved by a concurrent clone.

use std::collections::HashSet;

use crate::clone::reserve::{mac_key, uuid_key, Reservation, Reservations};
use crate::domain_xml::DomainInfo;
use crate::error::{Error, Result};
use crate::host::Host;
use crate::ids;

pub struct Identity {
    pub uuid: String,
    pub macs: Vec<String>,
    pub genid: String,
}

/// Picks the clone's identity, or takes the given `uuid` and `macs` when they are free.
pub fn choose(
    host: &Host,
    reservations: &Reservations,
    reservation: &mut Reservation,
    info: &DomainInfo,
    uuid: Option<&str>,
    macs: Option<&[String]>,
) -> Result<Identity> {
    let uuid = pick_uuid(host, reservations, reservation, uuid)?;
    let macs = pick_macs(host, reservations, reservation, info, macs)?;
    Ok(Identity {
        uuid,
        macs,
        genid: ids::new_uuid(|_| false),
    })
}

fn pick_uuid(
    host: &Host,
    reservations: &Reservations,
    reservation: &mut Reservation,
    given: Option<&str>,
) -> Result<String> {
    if let Some(uuid) = given {
        if host.uuid_taken(uuid) || !reservation.take(uuid_key(uuid)) {
            return Err(Error::InvalidOption(format!(
                "Option “uuid”: {uuid} already belongs to another VM."
            )));
        }
        return Ok(uuid.to_string());
    }
    loop {
        let uuid = ids::new_uuid(|u| host.uuid_taken(u) || reservations.is_held(&uuid_key(u)));
        if reservation.take(uuid_key(&uuid)) {
            return Ok(uuid);
        }
    }
}

fn pick_macs(
    host: &Host,
    reservations: &Reservations,
    reservation: &mut Reservation,
    info: &DomainInfo,
    given: Option<&[String]>,
) -> Result<Vec<String>> {
    if info.interfaces.is_empty() && given.is_none() {
        return Ok(Vec::new());
    }
    let in_use = host.macs_in_use()?;
    let busy = |m: &str| in_use.contains(m) || reservations.is_held(&mac_key(m));
    if let Some(macs) = given {
        if macs.len() != info.interfaces.len() {
            return Err(Error::InvalidOption(format!(
                "Option “mac-addresses” gives {} addresses, but “{}” has {} network interfaces; give one per interface, in order.",
                macs.len(),
                info.name,
                info.interfaces.len()
            )));
        }
        let distinct: HashSet<&String> = macs.iter().collect();
        if distinct.len() != macs.len() {
            return Err(Error::InvalidOption(
                "Option “mac-addresses” lists the same address twice; each interface needs its own."
                    .into(),
            ));
        }
        for mac in macs {
            if busy(mac) || !reservation.take(mac_key(mac)) {
                return Err(Error::MacInUse(format!(
                    "The MAC address {mac} is already used by a network interface of another VM. Choose another one, or leave mac-addresses out to get new random ones."
                )));
            }
        }
        return Ok(macs.to_vec());
    }
    let mut taken: HashSet<String> = in_use;
    loop {
        let macs = ids::new_macs(info.interfaces.len(), &taken);
        let mut ok = true;
        for mac in &macs {
            if !reservation.take(mac_key(mac)) {
                taken.insert(mac.clone());
                ok = false;
            }
        }
        if ok {
            return Ok(macs);
        }
    }
}
