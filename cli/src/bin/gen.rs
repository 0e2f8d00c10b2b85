fn main() {
    let shell: clap_complete::Shell = std::env::args().nth(1).unwrap().parse().unwrap();
    clap_complete::generate(
        shell,
        &mut vmclonectl::args::command(),
        "vmclonectl",
        &mut std::io::stdout(),
    );
}
