use std::process::ExitCode;

use vmclonectl::args::{Invocation, PROGRAM};
use vmclonectl::{i18n, Output};

fn main() -> ExitCode {
    i18n::init();
    let inv = Invocation::from_env();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(vmclonectl::run(&inv, &Output::from_env())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let sentence = e.sentence();
            if !sentence.is_empty() {
                eprintln!("{PROGRAM}: {sentence}");
            }
            ExitCode::from(e.status().code())
        }
    }
}
