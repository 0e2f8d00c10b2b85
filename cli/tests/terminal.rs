//! vmclonectl on a pseudo-terminal (util-linux `script`): colour and the
//! progress bar; a real Ctrl-C typed into the terminal (the line discipline
//! sends SIGINT) cancels a long copy on the real libvirtd, and nothing is left.

mod support;

use std::time::{Duration, Instant};

use support::*;
use vmclone_tests::libvirt::{Lab, SYSTEM_URI};
use vmclone_tests::process::run;
use vmclone_tests::terminal::Terminal;
use vmclone_tests::{PrivateBus, Service};

/// `vmclonectl ARGS…` on a terminal of its own, in English.
fn on_terminal(args: &[&str]) -> Terminal {
    let mut argv = vec![CTL];
    argv.extend_from_slice(args);
    let mut script = std::process::Command::new("script");
    english(&mut script);
    Terminal::start(script, &argv)
}

/// The byte counts a progress bar showed, in order; its line reads
/// "Copying [===>  ] 1.25 GiB/4.00 GiB  812.5 MiB/s  3s left".
fn bar_values(screen: &str) -> Vec<f64> {
    let tokens: Vec<&str> = screen
        .split(|c: char| c.is_whitespace() || c == '\r' || c == '\u{1b}')
        .collect();
    let mut values = Vec::new();
    for pair in tokens.windows(2) {
        // "GiB/4.00" (bytes done, then the total), not "MiB/s" (the rate).
        let Some((unit, total)) = pair[1].split_once('/') else {
            continue;
        };
        if total.parse::<f64>().is_err() {
            continue;
        }
        let factor = match unit {
            "B" => 1.0,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            _ => continue,
        };
        if let Ok(n) = pair[0]
            .trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse::<f64>()
        {
            values.push(n * factor);
        }
    }
    values
}

/// Waits until the bar has shown three different amounts, which only grow.
fn wait_for_an_advancing_bar(term: &Terminal) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut seen = bar_values(&term.text());
        seen.dedup();
        if seen.iter().filter(|&&v| v > 0.0).count() >= 3 {
            assert!(
                seen.windows(2).all(|w| w[0] <= w[1]),
                "the bar only advances: {seen:?}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no advancing bar:\n{:?}",
            term.text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn on_a_terminal_the_list_has_colour_and_a_clone_ends_with_its_line() {
    let demo = Demo::start();
    let address = format!("--address={}", demo.bus.address());
    let (status, screen) = on_terminal(&["list", &address]).wait(Duration::from_secs(20));
    assert!(status.success(), "{screen}");
    assert!(
        screen.contains("\u{1b}[32mrunning"),
        "running is green on a terminal: {screen:?}"
    );
    let (status, screen) = on_terminal(&["clone", "web01", &address]).wait(Duration::from_secs(20));
    assert!(status.success(), "{screen}");
    let id = demo.bus.get_vm("web01-clone").id;
    assert!(
        screen.contains(&format!("Cloned web01 as web01-clone ({id}).")),
        "{screen:?}"
    );
}

// --- On the real libvirtd ---------------------------------------------------

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn the_bar_advances_during_a_long_copy_and_ctrl_c_cancels_leaving_nothing() {
    let lab = Lab::new("pty");
    let src = lab.name("big");
    lab.big_vm(lab.dir(), &src, 8, 6 << 10);
    let bus = PrivateBus::start();
    let _service = Service::start(&bus, SYSTEM_URI, &[]);
    let (files, vms) = (lab.files(), lab.vms());
    let clone = format!("{src}-copy");
    let address = format!("--address={}", bus.address());
    let mut term = on_terminal(&["clone", &src, &clone, &address]);
    wait_for_an_advancing_bar(&term);
    let screen = term.text();
    assert!(
        screen.contains(&format!("{src} → {clone}\r\n")),
        "{screen:?}"
    );
    assert!(
        screen.contains("Copying") && screen.contains("/6.00 GiB") && screen.contains("s left"),
        "total and time left: {screen:?}"
    );
    term.type_keys("\x03");
    let (status, screen) = term.wait(Duration::from_secs(120));
    assert_eq!(status.code(), Some(8), "cancelled: {screen:?}");
    assert!(
        screen.contains(&format!("Cancelled: {clone} was not made")),
        "{screen:?}"
    );
    assert_eq!(lab.vms(), vms, "no domain left");
    assert_eq!(lab.files(), files, "no file left");
}

#[test]
#[ignore = "needs root, libvirtd and QEMU"]
fn a_second_ctrl_c_stops_waiting_even_for_a_service_that_does_not_answer_and_the_job_goes_on() {
    let lab = Lab::new("pty2");
    let src = lab.name("big");
    lab.big_vm(lab.dir(), &src, 8, 6 << 10);
    let bus = PrivateBus::start();
    let service = Service::start(&bus, SYSTEM_URI, &[]);
    let (files, vms) = (lab.files(), lab.vms());
    let clone = format!("{src}-copy");
    let address = format!("--address={}", bus.address());
    let mut term = on_terminal(&["clone", &src, &clone, &address]);
    wait_for_an_advancing_bar(&term);
    // The service stops answering: the first Ctrl-C's Cancel call waits for it.
    let signal = |which: &str| run("kill", &[which, &service.pid().to_string()]);
    signal("-STOP");
    term.type_keys("\x03");
    std::thread::sleep(Duration::from_millis(300));
    term.type_keys("\x03");
    let (status, screen) = term.wait(Duration::from_secs(30));
    signal("-CONT");
    assert_eq!(status.code(), Some(130), "interrupted: {screen:?}");
    let job = screen
        .split("Stopped waiting; the job goes on: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the job's path: {screen:?}"))
        .to_string();
    assert!(job.starts_with("/org/vmclone/Manager/jobs/"), "{job}");
    // The service, answering again, gets the Cancel and removes what it made.
    assert_eq!(
        bus.wait_for_job_end(&job, Duration::from_secs(120)),
        "cancelled",
        "the first Ctrl-C's cancel reached the job"
    );
    assert_eq!(lab.vms(), vms, "no domain left");
    assert_eq!(lab.files(), files, "no file left");
}
