//! Where a model runs: `cpu`, `cuda` or `cuda:<n>` as configs and `--device` flags spell it,
//! turned into a candle `Device` with an error a user can act on.
//!
//! Two failures get their own words: a binary built without the `cuda` feature (rebuild with
//! `--features cuda`), and a CUDA build on a machine whose driver or GPU cannot be opened. The
//! CUDA build loads the driver and cuBLAS / cuRAND at run time (scripts/cuda-build.sh), and
//! cudarc reports a missing library by panicking; that panic is caught here and returned as an
//! error naming the device, so `--device cuda` on a machine without a GPU ends with a message,
//! not a backtrace.

use candle_core::Device;

use crate::error::{ModelError, Result};

/// What a device string names, before any device is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    /// A CUDA ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
}

/// Parses `cpu`, `cuda` or `cuda:<n>` (case and surrounding spaces ignored).
pub fn parse_device_spec(name: &str) -> Result<DeviceSpec> {
    let s = name.trim().to_ascii_lowercase();
    match s.as_str() {
        "cpu" => return Ok(DeviceSpec::Cpu),
        "cuda" => return Ok(DeviceSpec::Cuda(0)),
        _ => {}
    }
    if let Some(n) = s.strip_prefix("cuda:") {
        return n.parse::<usize>().map(DeviceSpec::Cuda).map_err(|_| {
            ModelError::invalid(format!(
                "device `{name}`: the CUDA ordinal `{n}` is not a number (use cuda:0, cuda:1, ...)"
            ))
        });
    }
    Err(ModelError::invalid(format!(
        "device `{name}` is not one of cpu, cuda, cuda:<n>"
    )))
}

/// True when this binary was built with the `cuda` feature.
pub fn cuda_compiled() -> bool {
    cfg!(feature = "cuda")
}

/// Opens the device a string names: [`parse_device_spec`], then the device itself.
pub fn parse_device(name: &str) -> Result<Device> {
    match parse_device_spec(name)? {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(ordinal) => open_cuda(name, ordinal),
    }
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(name: &str, _ordinal: usize) -> Result<Device> {
    Err(ModelError::invalid(format!(
        "device `{name}`: this binary was built without the `cuda` feature; rebuild with \
         `bash scripts/cuda-build.sh` (cargo build --release --features cuda), or use --device cpu"
    )))
}

#[cfg(feature = "cuda")]
fn open_cuda(name: &str, ordinal: usize) -> Result<Device> {
    // cudarc panics when libcuda / libcublas / libcurand cannot be loaded. Keep the default hook
    // from printing that panic: its message becomes the error below.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(|| Device::new_cuda(ordinal));
    std::panic::set_hook(hook);
    let hint = "an NVIDIA driver (libcuda.so.1) and the CUDA 13 libraries cuBLAS and cuRAND must \
                be on the loader's path (LD_LIBRARY_PATH)";
    match opened {
        Ok(Ok(dev)) => Ok(dev),
        Ok(Err(e)) => Err(ModelError::invalid(format!(
            "device `{name}`: CUDA device {ordinal} could not be opened: {e} ({hint}, and the \
             GPU must exist)"
        ))),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown failure".into());
            Err(ModelError::invalid(format!(
                "device `{name}`: no usable CUDA installation: {msg} ({hint})"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spellings_and_rejects_the_rest() {
        assert_eq!(parse_device_spec("cpu").unwrap(), DeviceSpec::Cpu);
        assert_eq!(parse_device_spec(" CUDA ").unwrap(), DeviceSpec::Cuda(0));
        assert_eq!(parse_device_spec("cuda:3").unwrap(), DeviceSpec::Cuda(3));
        let e = parse_device_spec("cuda:x").unwrap_err().to_string();
        assert!(e.contains("not a number"), "{e}");
        let e = parse_device_spec("metal").unwrap_err().to_string();
        assert!(e.contains("cpu, cuda, cuda:<n>"), "{e}");
        assert!(parse_device("cpu").unwrap().is_cpu());
    }

    #[test]
    fn cuda_without_the_feature_or_the_driver_is_a_clear_error() {
        // No machine this runs on in CI has a GPU: either the feature is missing or the driver.
        if let Ok(dev) = parse_device("cuda:0") {
            assert!(dev.is_cuda());
            return;
        }
        let e = parse_device("cuda:0").unwrap_err().to_string();
        if cuda_compiled() {
            assert!(e.contains("CUDA"), "{e}");
        } else {
            assert!(e.contains("without the `cuda` feature"), "{e}");
        }
    }
}
