//! The coverage-guided libFuzzer target for `domain_xml::parse` and
//! `rewrite`; built and run by tools/fuzz.sh (see README, "Reliability").
//! With `VMCLONE_FUZZ_WRITE_SEEDS=DIR` it only writes the seed inputs into
//! DIR, so that the script needs no second build.
#![no_main]

use libfuzzer_sys::{fuzz_crossover, fuzz_mutator, fuzz_target, fuzzer_mutate};

fuzz_target!(
    init: {
        if let Some(dir) = std::env::var_os("VMCLONE_FUZZ_WRITE_SEEDS") {
            match vmclone_fuzz::seeds::write_inputs(dir.as_ref()) {
                Ok(n) => {
                    println!("fuzz-rewrite: {n} seed inputs in {}", dir.to_string_lossy());
                    std::process::exit(0);
                }
                Err(e) => {
                    eprintln!("fuzz-rewrite: {e}");
                    std::process::exit(1);
                }
            }
        }
    },
    |data: &[u8]| vmclone_fuzz::fuzz_one(data)
);

// Two in three mutations know XML; the rest, and any the input offers no
// structure for, are libFuzzer's own byte mutations (with fuzz/xml.dict).
fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    if seed % 3 != 0 {
        if let Some(out) = vmclone_fuzz::mutate::mutate(&data[..size], seed / 3) {
            if out.len() <= max_size {
                data[..out.len()].copy_from_slice(&out);
                return out.len();
            }
        }
    }
    fuzzer_mutate(data, size, max_size)
});

fuzz_crossover!(|a: &[u8], b: &[u8], out: &mut [u8], seed: u32| {
    match vmclone_fuzz::mutate::crossover(a, b, seed) {
        Some(x) if x.len() <= out.len() => {
            out[..x.len()].copy_from_slice(&x);
            x.len()
        }
        _ => {
            let n = a.len().min(out.len());
            out[..n].copy_from_slice(&a[..n]);
            n
        }
    }
});
