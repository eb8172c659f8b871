//! Data parallelism: one process per device, each with a replica, gradients averaged across
//! all ranks after every backward pass.
//!
//! * On CUDA devices through NCCL (cargo feature `nccl`; NCCL and the CUDA driver are loaded
//!   at run time, so the feature builds on machines without CUDA). Each rank binds its own
//!   GPU's primary context to its thread before NCCL sees it ([`nccl`]).
//! * On the CPU through TCP ([`TcpSync`]): rank 0 sums the gradients in rank order and sends
//!   the mean back, so every rank holds the same bits. It is how the data-parallel loop is
//!   tested without GPUs, and a way to spread a run over the cores of several machines.
//!
//! Ranks meet through a rendezvous: `tcp://host:port` (rank 0 listens, the others connect)
//! or, for NCCL's 128-byte id, `file:///shared/dir/id`. A file rendezvous is tagged with the
//! run id every rank is given (`--run-id`, else the launcher's `SLURM_JOB_ID` or
//! `TORCHELASTIC_RUN_ID`): a file left by another run is never taken for this run's, and
//! rank 0 removes the file once every rank has joined.

use anyhow::{bail, ensure, Context, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

/// Averages gradients over ranks.
pub trait GradSync {
    /// Replaces each gradient by the mean of that gradient over all ranks.
    fn all_reduce_mean(&mut self, grads: &[Tensor]) -> Result<()>;
}

/// How long ranks wait for each other at the rendezvous and in a reduction.
pub const RENDEZVOUS_TIMEOUT: Duration = Duration::from_secs(600);

/// Environment variables of common launchers that name the run, in the order they are tried
/// when no run id is configured.
pub const RUN_ID_VARIABLES: [&str; 2] = ["SLURM_JOB_ID", "TORCHELASTIC_RUN_ID"];

/// The run id: the configured one, else the first launcher variable that is set.
pub fn run_id(configured: Option<&str>) -> Option<String> {
    configured
        .map(str::to_string)
        .or_else(|| RUN_ID_VARIABLES.iter().find_map(|v| std::env::var(v).ok()))
        .filter(|id| !id.trim().is_empty())
}

/// Header of a rendezvous file: magic, then the run id's length and bytes, then the payload.
const FILE_MAGIC: &[u8; 8] = b"ALXRDV01";

/// Shares `id` (rank 0) or receives it (other ranks) through `url`. A file rendezvous needs
/// the `run_id` all ranks share; a TCP one ignores it.
pub fn rendezvous(
    url: &str,
    rank: usize,
    world: usize,
    run_id: Option<&str>,
    id: Option<&[u8]>,
) -> Result<Vec<u8>> {
    if let Some(path) = url.strip_prefix("file://") {
        let run_id = run_id.with_context(|| {
            format!(
                "a file rendezvous needs a run id shared by all ranks, so that a file left by \
                 an earlier run is not read: pass --run-id (or set one of {})",
                RUN_ID_VARIABLES.join(", ")
            )
        })?;
        return file_rendezvous(Path::new(path), rank, run_id, id);
    }
    if let Some(addr) = url.strip_prefix("tcp://") {
        return tcp_rendezvous(addr, rank, world, id);
    }
    bail!("unknown rendezvous {url:?}: use file:///path or tcp://host:port")
}

/// Rank 0, once every rank has joined: removes a file rendezvous so that no later run can
/// find it. (A TCP rendezvous leaves nothing behind.)
pub fn rendezvous_done(url: &str) {
    if let Some(path) = url.strip_prefix("file://") {
        let _ = std::fs::remove_file(path);
    }
}

fn file_rendezvous(path: &Path, rank: usize, run_id: &str, id: Option<&[u8]>) -> Result<Vec<u8>> {
    if rank == 0 {
        let id = id.context("rank 0 must provide the id")?;
        let mut bytes = FILE_MAGIC.to_vec();
        bytes.extend((run_id.len() as u32).to_le_bytes());
        bytes.extend(run_id.as_bytes());
        bytes.extend(id);
        // Replaces whatever an earlier run left under this name, atomically.
        alexnet_host::atomic::write_atomic(path, &bytes)?;
        return Ok(id.to_vec());
    }
    let start = Instant::now();
    loop {
        if let Ok(bytes) = std::fs::read(path) {
            if let Some(payload) = file_payload(&bytes, run_id) {
                return Ok(payload.to_vec());
            }
        }
        if start.elapsed() > RENDEZVOUS_TIMEOUT {
            bail!(
                "rank {rank}: rank 0 did not write {} for run {run_id:?} within {} s",
                path.display(),
                RENDEZVOUS_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The payload of a rendezvous file written for `run_id`; None for another run's file.
fn file_payload<'a>(bytes: &'a [u8], run_id: &str) -> Option<&'a [u8]> {
    let rest = bytes.strip_prefix(FILE_MAGIC.as_slice())?;
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len) as usize;
    let (id, payload) = (rest.get(..len)?, rest.get(len..)?);
    (id == run_id.as_bytes()).then_some(payload)
}

/// Rank 0's listener on `addr`, or another rank's connection to it (retried until rank 0
/// listens or the rendezvous times out).
fn tcp_connect(addr: &str, rank: usize) -> Result<TcpStream> {
    let start = Instant::now();
    loop {
        match TcpStream::connect(addr) {
            Ok(stream) => return Ok(stream),
            Err(e) if start.elapsed() > RENDEZVOUS_TIMEOUT => {
                return Err(e).with_context(|| format!("rank {rank} cannot reach rank 0 at {addr}"))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn tcp_rendezvous(addr: &str, rank: usize, world: usize, id: Option<&[u8]>) -> Result<Vec<u8>> {
    if rank == 0 {
        let id = id.context("rank 0 must provide the id")?;
        let listener =
            TcpListener::bind(addr).with_context(|| format!("rank 0 cannot listen on {addr}"))?;
        for _ in 1..world {
            let (mut stream, _) = listener.accept()?;
            stream.write_all(id)?;
        }
        return Ok(id.to_vec());
    }
    let mut bytes = Vec::new();
    tcp_connect(addr, rank)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The gradient synchronizer for `world` ranks on `device` (None when alone): NCCL on a GPU,
/// TCP on the CPU.
pub fn connect(
    rank: usize,
    world: usize,
    rendezvous_url: Option<&str>,
    run_id: Option<&str>,
    device: Device,
) -> Result<Option<Box<dyn GradSync>>> {
    if world <= 1 {
        return Ok(None);
    }
    ensure!(
        rank < world,
        "rank {rank} is not below the world size {world}"
    );
    let url = rendezvous_url.context("several ranks need a rendezvous")?;
    match device {
        Device::Cpu => {
            let addr = url.strip_prefix("tcp://").with_context(|| {
                format!(
                    "data parallelism on the CPU reduces through TCP: use a tcp://host:port \
                     rendezvous, not {url:?}"
                )
            })?;
            Ok(Some(Box::new(TcpSync::new(addr, rank, world)?)))
        }
        Device::Cuda(index) => nccl(rank, world, url, run_id, index).map(Some),
        other => bail!("data parallelism runs on CUDA devices or the CPU, not {other:?}"),
    }
}

/// Joins the NCCL communicator of `world` ranks on GPU `index` (also at world size 1, which
/// goes through the same initialization and reduction).
#[cfg(feature = "nccl")]
pub fn nccl(
    rank: usize,
    world: usize,
    url: &str,
    run_id: Option<&str>,
    index: usize,
) -> Result<Box<dyn GradSync>> {
    Ok(Box::new(nccl::Nccl::new(rank, world, url, run_id, index)?))
}

/// Without the `nccl` feature: a clear error.
#[cfg(not(feature = "nccl"))]
pub fn nccl(
    _rank: usize,
    world: usize,
    _url: &str,
    _run_id: Option<&str>,
    _index: usize,
) -> Result<Box<dyn GradSync>> {
    bail!(
        "data parallelism across {world} processes on CUDA needs NCCL: build host-train with \
         `--features nccl` (it loads NCCL at run time)"
    )
}

/// Gradient averaging over TCP for CPU ranks: every rank sends its gradients to rank 0, which
/// adds them in rank order (so the sum does not depend on arrival order), divides by the
/// world size as NCCL's path does, and sends the same mean back to all.
pub struct TcpSync {
    rank: usize,
    world: usize,
    /// Rank 0: the connections to ranks 1.., in rank order. Others: the one to rank 0.
    peers: Vec<TcpStream>,
}

impl TcpSync {
    /// Rank 0 listens on `addr` until every other rank has connected and said who it is.
    pub fn new(addr: &str, rank: usize, world: usize) -> Result<Self> {
        let peers = if rank == 0 {
            let listener = TcpListener::bind(addr)
                .with_context(|| format!("rank 0 cannot listen on {addr}"))?;
            let mut by_rank: Vec<Option<TcpStream>> = (1..world).map(|_| None).collect();
            for _ in 1..world {
                let (mut stream, from) = listener.accept()?;
                stream.set_read_timeout(Some(RENDEZVOUS_TIMEOUT))?;
                let mut word = [0u8; 8];
                stream.read_exact(&mut word)?;
                let r = u64::from_le_bytes(word) as usize;
                let slot = r
                    .checked_sub(1)
                    .and_then(|i| by_rank.get_mut(i))
                    .with_context(|| format!("{from} claims rank {r} of {world}"))?;
                ensure!(slot.is_none(), "two processes claim rank {r}");
                *slot = Some(stream);
            }
            by_rank.into_iter().flatten().collect()
        } else {
            let mut stream = tcp_connect(addr, rank)?;
            stream.set_read_timeout(Some(RENDEZVOUS_TIMEOUT))?;
            stream.write_all(&(rank as u64).to_le_bytes())?;
            vec![stream]
        };
        for p in &peers {
            p.set_nodelay(true)?;
        }
        Ok(TcpSync { rank, world, peers })
    }
}

fn send_f32s(stream: &mut TcpStream, values: &[f32]) -> Result<()> {
    let mut bytes = Vec::with_capacity(8 + 4 * values.len());
    bytes.extend((values.len() as u64).to_le_bytes());
    for v in values {
        bytes.extend(v.to_le_bytes());
    }
    stream.write_all(&bytes).context("a rank went away")
}

fn recv_f32s(stream: &mut TcpStream, expected: usize) -> Result<Vec<f32>> {
    let mut word = [0u8; 8];
    stream.read_exact(&mut word).context("a rank went away")?;
    let n = u64::from_le_bytes(word) as usize;
    ensure!(
        n == expected,
        "a rank sent {n} gradient values, this one has {expected}: the ranks run different nets"
    );
    let mut bytes = vec![0u8; 4 * n];
    stream.read_exact(&mut bytes).context("a rank went away")?;
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

impl GradSync for TcpSync {
    fn all_reduce_mean(&mut self, grads: &[Tensor]) -> Result<()> {
        let mut mine = Vec::new();
        for g in grads {
            mine.extend(Vec::<f32>::try_from(
                g.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1),
            )?);
        }
        let mean = if self.rank == 0 {
            let mut sum = mine;
            for peer in &mut self.peers {
                let theirs = recv_f32s(peer, sum.len())?;
                for (s, v) in sum.iter_mut().zip(theirs) {
                    *s += v;
                }
            }
            let world = self.world as f32;
            sum.iter_mut().for_each(|s| *s /= world);
            for peer in &mut self.peers {
                send_f32s(peer, &sum)?;
            }
            sum
        } else {
            let n = mine.len();
            send_f32s(&mut self.peers[0], &mine)?;
            recv_f32s(&mut self.peers[0], n)?
        };
        let _guard = tch::no_grad_guard();
        let mut at = 0;
        for g in grads {
            let n = g.numel();
            let values = Tensor::from_slice(&mean[at..at + n]).f_view(g.size().as_slice())?;
            let mut g = g.shallow_clone();
            g.f_copy_(&values)?;
            at += n;
        }
        Ok(())
    }
}

#[cfg(feature = "nccl")]
mod nccl {
    //! NCCL through cudarc's raw bindings, on libtorch's tensors (their device pointers, on
    //! the default stream that libtorch uses unless told otherwise).

    use super::GradSync;
    use anyhow::{bail, Context, Result};
    use cudarc::driver::CudaContext;
    use cudarc::nccl::{result, sys};
    use std::sync::Arc;

    pub struct Nccl {
        comm: sys::ncclComm_t,
        world: usize,
        /// This rank's GPU, made current on the calling thread before every NCCL call.
        gpu: Arc<CudaContext>,
    }

    impl Nccl {
        pub fn new(
            rank: usize,
            world: usize,
            url: &str,
            run_id: Option<&str>,
            device: usize,
        ) -> Result<Self> {
            // SAFETY: only checks whether the library can be opened.
            if !unsafe { sys::is_culib_present() } {
                bail!("NCCL (libnccl.so.2) cannot be loaded; install NCCL or put it on LD_LIBRARY_PATH");
            }
            // SAFETY: as above, for the CUDA driver (cudarc panics on first use without it).
            if !unsafe { cudarc::driver::sys::is_culib_present() } {
                bail!("the CUDA driver (libcuda.so) cannot be loaded; NCCL needs a GPU machine");
            }
            // NCCL binds a communicator to the thread's current device. libtorch's device
            // guards restore the previous device after each op, so nothing libtorch does makes
            // cuda:N current for good: bind its primary context (the one libtorch uses)
            // explicitly.
            let gpu = CudaContext::new(device)
                .map_err(|e| anyhow::anyhow!("cannot open cuda:{device}: {e:?}"))?;
            gpu.bind_to_thread()
                .map_err(|e| anyhow::anyhow!("cannot make cuda:{device} current: {e:?}"))?;
            let mine = if rank == 0 {
                let id = result::get_uniqueid().map_err(|e| anyhow::anyhow!("{e:?}"))?;
                Some(id.internal.iter().map(|&c| c as u8).collect::<Vec<u8>>())
            } else {
                None
            };
            let bytes = super::rendezvous(url, rank, world, run_id, mine.as_deref())?;
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
            let mut comm = std::ptr::null_mut();
            // SAFETY: `comm` is a valid out-pointer; id and ranks come from the rendezvous.
            unsafe { result::comm_init_rank(&mut comm, world as i32, id, rank as i32) }
                .map_err(|e| anyhow::anyhow!("ncclCommInitRank: {e:?}"))
                .context("cannot join the NCCL communicator")?;
            // Every rank has read the id once the communicator exists.
            if rank == 0 {
                super::rendezvous_done(url);
            }
            Ok(Nccl { comm, world, gpu })
        }
    }

    impl GradSync for Nccl {
        fn all_reduce_mean(&mut self, grads: &[tch::Tensor]) -> Result<()> {
            self.gpu
                .bind_to_thread()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
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

    fn id(seed: u8) -> Vec<u8> {
        (0..128).map(|i| (i as u8).wrapping_mul(seed)).collect()
    }

    #[test]
    fn file_rendezvous_carries_the_id() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("id").display());
        let id = id(1);
        let u = url.clone();
        let waiter = std::thread::spawn(move || rendezvous(&u, 1, 2, Some("run"), None).unwrap());
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(rendezvous(&url, 0, 2, Some("run"), Some(&id)).unwrap(), id);
        assert_eq!(waiter.join().unwrap(), id);
        rendezvous_done(&url);
        assert!(!dir.path().join("id").exists(), "rank 0 removes the file");
    }

    /// A file an earlier run left (its ranks crashed before rank 0 could remove it) is not
    /// this run's id: rank 1 waits for rank 0's fresh one instead of joining a dead run.
    #[test]
    fn a_stale_rendezvous_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id");
        let url = format!("file://{}", path.display());
        rendezvous(&url, 0, 2, Some("yesterday"), Some(&id(3))).unwrap();
        assert!(path.exists());
        let u = url.clone();
        let waiter = std::thread::spawn(move || rendezvous(&u, 1, 2, Some("today"), None).unwrap());
        std::thread::sleep(Duration::from_millis(500));
        assert!(!waiter.is_finished(), "rank 1 took the stale id");
        let fresh = id(5);
        rendezvous(&url, 0, 2, Some("today"), Some(&fresh)).unwrap();
        assert_eq!(waiter.join().unwrap(), fresh);
    }

    #[test]
    fn a_file_rendezvous_without_a_run_id_is_refused() {
        let err = rendezvous("file:///tmp/x", 1, 2, None, None).unwrap_err();
        assert!(format!("{err}").contains("--run-id"), "{err}");
        assert_eq!(run_id(Some("a")).as_deref(), Some("a"));
    }

    #[test]
    fn tcp_rendezvous_carries_the_id() {
        let url = format!("tcp://127.0.0.1:{}", free_port());
        let id = id(7);
        let (a, b) = (url.clone(), url.clone());
        let r1 = std::thread::spawn(move || rendezvous(&a, 1, 3, None, None).unwrap());
        let r2 = std::thread::spawn(move || rendezvous(&b, 2, 3, None, None).unwrap());
        assert_eq!(rendezvous(&url, 0, 3, None, Some(&id)).unwrap(), id);
        assert_eq!(r1.join().unwrap(), id);
        assert_eq!(r2.join().unwrap(), id);
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Three CPU ranks average through TCP: every rank gets the mean, the same bits.
    #[test]
    fn tcp_sync_averages_the_same_bits_on_every_rank() {
        let addr = format!("127.0.0.1:{}", free_port());
        let world = 3;
        let ranks: Vec<_> = (0..world)
            .map(|rank| {
                let addr = addr.clone();
                std::thread::spawn(move || {
                    let mut sync = connect(
                        rank,
                        world,
                        Some(&format!("tcp://{addr}")),
                        None,
                        Device::Cpu,
                    )
                    .unwrap()
                    .unwrap();
                    let a = Tensor::from_slice(&[rank as f32, 1.0, 0.1 * rank as f32]);
                    let b = Tensor::from_slice(&[10.0f32 * rank as f32]).view([1, 1]);
                    sync.all_reduce_mean(&[a.shallow_clone(), b.shallow_clone()])
                        .unwrap();
                    let mut out = Vec::<f32>::try_from(a).unwrap();
                    out.extend(Vec::<f32>::try_from(b.flatten(0, -1)).unwrap());
                    out
                })
            })
            .collect();
        let results: Vec<Vec<f32>> = ranks.into_iter().map(|h| h.join().unwrap()).collect();
        let expected = [1.0f32, 1.0, (0.0 + 0.1 + 0.2f32) / 3.0, 10.0];
        for r in &results {
            assert_eq!(r.len(), 4);
            assert_eq!(r[0], expected[0]);
            assert_eq!(r[1], expected[1]);
            assert!((r[2] - expected[2]).abs() < 1e-7);
            assert_eq!(r[3], expected[3]);
            assert_eq!(
                r.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                results[0].iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn several_ranks_need_a_usable_rendezvous() {
        assert!(connect(0, 1, None, None, Device::Cpu).unwrap().is_none());
        let err = connect(0, 2, None, None, Device::Cpu).err().unwrap();
        assert!(format!("{err}").contains("rendezvous"), "{err}");
        let e = connect(0, 2, Some("file:///tmp/x"), Some("r"), Device::Cpu)
            .err()
            .unwrap();
        assert!(format!("{e}").contains("tcp://"), "{e}");
        let e = connect(2, 2, Some("tcp://127.0.0.1:1"), None, Device::Cpu)
            .err()
            .unwrap();
        assert!(format!("{e}").contains("below"), "{e}");
    }
}
