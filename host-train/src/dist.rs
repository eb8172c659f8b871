//! Data parallelism: one process per GPU, each with a replica, gradients summed across all
//! ranks through NCCL after every backward pass (cargo feature `nccl`; NCCL and the CUDA
//! driver are loaded at run time, so the feature builds on machines without CUDA).
//!
//! Ranks meet through a rendezvous that carries NCCL's 128-byte unique id from rank 0 to
//! the others: `file:///shared/dir/id` (rank 0 writes it atomically, the others wait for
//! it) or `tcp://host:port` (rank 0 listens, the others connect).

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Averages gradients over ranks.
pub trait GradSync {
    /// Replaces each gradient by the mean of that gradient over all ranks.
    fn all_reduce_mean(&mut self, grads: &[tch::Tensor]) -> Result<()>;
}

/// How long ranks wait for each other at the rendezvous.
pub const RENDEZVOUS_TIMEOUT: Duration = Duration::from_secs(600);

/// Shares `id` (rank 0) or receives it (other ranks) through `url`.
pub fn rendezvous(url: &str, rank: usize, world: usize, id: Option<&[u8]>) -> Result<Vec<u8>> {
    if let Some(path) = url.strip_prefix("file://") {
        return file_rendezvous(Path::new(path), rank, id);
    }
    if let Some(addr) = url.strip_prefix("tcp://") {
        return tcp_rendezvous(addr, rank, world, id);
    }
    bail!("unknown rendezvous {url:?}: use file:///path or tcp://host:port")
}

fn file_rendezvous(path: &Path, rank: usize, id: Option<&[u8]>) -> Result<Vec<u8>> {
    if rank == 0 {
        let id = id.context("rank 0 must provide the id")?;
        alexnet_host::atomic::write_atomic(path, id)?;
        return Ok(id.to_vec());
    }
    let start = Instant::now();
    loop {
        if let Ok(bytes) = std::fs::read(path) {
            return Ok(bytes);
        }
        if start.elapsed() > RENDEZVOUS_TIMEOUT {
            bail!(
                "rank {rank}: rank 0 did not write {} within {} s",
                path.display(),
                RENDEZVOUS_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn tcp_rendezvous(addr: &str, rank: usize, world: usize, id: Option<&[u8]>) -> Result<Vec<u8>> {
    if rank == 0 {
        let id = id.context("rank 0 must provide the id")?;
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("rank 0 cannot listen on {addr}"))?;
        for _ in 1..world {
            let (mut stream, _) = listener.accept()?;
            stream.write_all(id)?;
        }
        return Ok(id.to_vec());
    }
    let start = Instant::now();
    loop {
        match std::net::TcpStream::connect(addr) {
            Ok(mut stream) => {
                let mut bytes = Vec::new();
                stream.read_to_end(&mut bytes)?;
                return Ok(bytes);
            }
            Err(e) if start.elapsed() > RENDEZVOUS_TIMEOUT => {
                return Err(e).with_context(|| format!("rank {rank} cannot reach rank 0 at {addr}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The gradient synchronizer for `world` ranks on CUDA device `device` (None when alone).
pub fn connect(
    rank: usize,
    world: usize,
    rendezvous_url: Option<&str>,
    device: tch::Device,
) -> Result<Option<Box<dyn GradSync>>> {
    if world <= 1 {
        return Ok(None);
    }
    let url = rendezvous_url.context("several ranks need a rendezvous")?;
    #[cfg(feature = "nccl")]
    {
        let tch::Device::Cuda(index) = device else {
            bail!("NCCL data parallelism runs on CUDA devices, not {device:?}")
        };
        Ok(Some(Box::new(nccl::Nccl::new(rank, world, url, index)?)))
    }
    #[cfg(not(feature = "nccl"))]
    {
        let _ = (rank, url, device);
        bail!(
            "data parallelism across {world} processes needs NCCL: build host-train with \
             `--features nccl` (it loads NCCL at run time)"
        )
    }
}

#[cfg(feature = "nccl")]
mod nccl {
    //! NCCL through cudarc's raw bindings, on libtorch's tensors (their device pointers,
    //! on the default stream that libtorch uses unless told otherwise).

    use super::GradSync;
    use anyhow::{bail, Context, Result};
    use cudarc::nccl::{result, sys};

    pub struct Nccl {
        comm: sys::ncclComm_t,
        world: usize,
    }

    impl Nccl {
        pub fn new(rank: usize, world: usize, url: &str, device: usize) -> Result<Self> {
            // SAFETY: only checks whether the library can be opened.
            if !unsafe { sys::is_culib_present() } {
                bail!("NCCL (libnccl.so.2) cannot be loaded; install NCCL or put it on LD_LIBRARY_PATH");
            }
            let mine = if rank == 0 {
                let id = result::get_uniqueid().map_err(|e| anyhow::anyhow!("{e:?}"))?;
                Some(id.internal.iter().map(|&c| c as u8).collect::<Vec<u8>>())
            } else {
                None
            };
            let bytes = super::rendezvous(url, rank, world, mine.as_deref())?;
            if bytes.len() != 128 {
                bail!(
                    "the rendezvous delivered {} bytes, not NCCL's 128-byte id",
                    bytes.len()
                );
            }
            let mut id = sys::ncclUniqueId { internal: [0; 128] };
            for (d, s) in id.internal.iter_mut().zip(&bytes) {
                *d = *s as core::ffi::c_char;
            }
            // NCCL binds the communicator to the current CUDA device; libtorch made it
            // current when the model was placed on it.
            let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cuda(device)));
            let mut comm = std::ptr::null_mut();
            // SAFETY: `comm` is a valid out-pointer; id and ranks come from the rendezvous.
            unsafe { result::comm_init_rank(&mut comm, world as i32, id, rank as i32) }
                .map_err(|e| anyhow::anyhow!("ncclCommInitRank: {e:?}"))
                .context("cannot join the NCCL communicator")?;
            Ok(Nccl { comm, world })
        }
    }

    impl GradSync for Nccl {
        fn all_reduce_mean(&mut self, grads: &[tch::Tensor]) -> Result<()> {
            result::group_start().map_err(|e| anyhow::anyhow!("{e:?}"))?;
            for g in grads {
                if !g.is_contiguous() || g.kind() != tch::Kind::Float {
                    bail!("gradients must be contiguous f32 for NCCL");
                }
                let ptr = g.data_ptr();
                // SAFETY: in-place all-reduce over the tensor's own f32 buffer of `numel`
                // elements, alive for the call; stream null = the default stream libtorch uses.
                unsafe {
                    result::all_reduce(
                        ptr,
                        ptr,
                        g.numel(),
                        sys::ncclDataType_t::ncclFloat32,
                        sys::ncclRedOp_t::ncclSum,
                        self.comm,
                        std::ptr::null_mut(),
                    )
                }
                .map_err(|e| anyhow::anyhow!("ncclAllReduce: {e:?}"))?;
            }
            result::group_end().map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let _guard = tch::no_grad_guard();
            for g in grads {
                let mut g = g.shallow_clone();
                let _ = g.f_div_scalar_(self.world as f64)?;
            }
            Ok(())
        }
    }

    impl Drop for Nccl {
        fn drop(&mut self) {
            // SAFETY: the communicator was created by comm_init_rank and is destroyed once.
            let _ = unsafe { result::comm_destroy(self.comm) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_rendezvous_carries_the_id() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("id").display());
        let id: Vec<u8> = (0..128).map(|i| i as u8).collect();
        let u = url.clone();
        let waiter = std::thread::spawn(move || rendezvous(&u, 1, 2, None).unwrap());
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(rendezvous(&url, 0, 2, Some(&id)).unwrap(), id);
        assert_eq!(waiter.join().unwrap(), id);
    }

    #[test]
    fn tcp_rendezvous_carries_the_id() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let id: Vec<u8> = (0..128).map(|i| 255 - i as u8).collect();
        let (a, b) = (url.clone(), url.clone());
        let r1 = std::thread::spawn(move || rendezvous(&a, 1, 3, None).unwrap());
        let r2 = std::thread::spawn(move || rendezvous(&b, 2, 3, None).unwrap());
        assert_eq!(rendezvous(&url, 0, 3, Some(&id)).unwrap(), id);
        assert_eq!(r1.join().unwrap(), id);
        assert_eq!(r2.join().unwrap(), id);
    }

    #[test]
    fn several_ranks_without_nccl_or_rendezvous_fail_clearly() {
        assert!(connect(0, 1, None, tch::Device::Cpu).unwrap().is_none());
        let err = connect(0, 2, None, tch::Device::Cpu).err().unwrap();
        assert!(format!("{err}").contains("rendezvous"), "{err}");
        let e = connect(0, 2, Some("file:///tmp/x"), tch::Device::Cpu)
            .err()
            .unwrap();
        let msg = format!("{e}");
        assert!(msg.contains("nccl") || msg.contains("CUDA"), "{msg}");
    }
}
