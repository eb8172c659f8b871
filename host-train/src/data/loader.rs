//! The multi-threaded batch loader: worker threads prepare batches (crop, flip, PCA noise,
//! normalization) ahead of the training step, through a bounded prefetch queue, and a
//! reorder buffer hands them out in order.
//!
//! Determinism is the point: every sample's randomness comes from a ChaCha8 stream keyed by
//! (seed, epoch, position in the epoch's order), never from which thread ran it or when, so
//! the batches are identical for any number of workers and a resumed run reproduces the
//! batches of the interrupted one ([`Loader::start_at`]).

use super::augment::{prepare, Augment, Normalize, View};
use super::ImageSet;
use anyhow::{anyhow, bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One batch: inputs `[n, C, crop, crop]` and labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `n * C * crop * crop` values, sample after sample, each CHW.
    pub x: Vec<f32>,
    /// The `n` labels.
    pub y: Vec<i64>,
    /// Samples in the batch (the last batch of an epoch may be short).
    pub n: usize,
}

/// Domain tags that keep the shuffle and sample streams apart.
const TAG_SHUFFLE: u64 = 0x5348_5546_464c_4531;
const TAG_SAMPLE: u64 = 0x5341_4d50_4c45_5f31;

/// A ChaCha8 generator keyed by four words.
fn keyed_rng(a: u64, b: u64, c: u64, tag: u64) -> ChaCha8Rng {
    let mut seed = [0u8; 32];
    for (i, w) in [a, b, c, tag].iter().enumerate() {
        seed[i * 8..(i + 1) * 8].copy_from_slice(&w.to_le_bytes());
    }
    ChaCha8Rng::from_seed(seed)
}

/// The epoch's order: a permutation of `0..len` drawn from ChaCha8 keyed by (seed, epoch).
pub fn shuffled(len: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.shuffle(&mut keyed_rng(seed, epoch, 0, TAG_SHUFFLE));
    order
}

/// What the workers share.
struct Job {
    set: Arc<ImageSet>,
    order: Vec<usize>,
    batch_size: usize,
    view: View,
    norm: Arc<Normalize>,
    aug: Arc<Augment>,
    seed: u64,
    epoch: u64,
}

impl Job {
    fn batches(&self) -> usize {
        if self.batch_size == 0 {
            0
        } else {
            self.order.len().div_ceil(self.batch_size)
        }
    }

    /// Batch `b`: positions `b * batch_size ..` of the order.
    fn make(&self, b: usize) -> Result<Batch> {
        let start = b * self.batch_size;
        let end = (start + self.batch_size).min(self.order.len());
        let per = self.set.channels * self.aug.crop * self.aug.crop;
        let n = end - start;
        if per == 0 {
            bail!("empty input shape (crop 0 or no channels)");
        }
        let mut x = vec![0.0f32; n * per];
        let mut y = Vec::with_capacity(n);
        for (j, out) in x.chunks_exact_mut(per).enumerate() {
            let pos = start + j;
            let index = self.order[pos];
            let mut rng = keyed_rng(self.seed, self.epoch, pos as u64, TAG_SAMPLE);
            prepare(
                &self.set, index, &self.norm, &self.aug, self.view, &mut rng, out,
            )
            .map_err(|e| e.context(format!("sample {pos} of the epoch (image {index})")))?;
            y.push(i64::from(self.set.labels[index]));
        }
        Ok(Batch { x, y, n })
    }
}

/// Threads and channels, created on the first call to `next`.
struct Running {
    /// Batch indices for the workers; dropping it stops them.
    work: Option<Sender<usize>>,
    /// Ready batches (bounded: the prefetch queue).
    ready: Option<Receiver<(usize, Result<Batch>)>>,
    threads: Vec<JoinHandle<()>>,
}

/// How a loader walks its order: batch size, view, the seed and epoch its draws come from,
/// and its threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Images per batch (the last may be short).
    pub batch_size: usize,
    /// Random crops for training, centre or one of the ten patches for evaluation.
    pub view: View,
    /// The run's seed.
    pub seed: u64,
    /// The epoch (with the seed and a sample's position, all its randomness).
    pub epoch: u64,
    /// Threads (0: one per core).
    pub workers: usize,
    /// Batches prepared ahead.
    pub prefetch: usize,
}

/// An in-order iterator over an epoch's batches, prepared by worker threads.
///
/// Batches are consecutive chunks of `order` (the last may be short). At most
/// `prefetch + workers` batches exist ahead of the consumer. Dropping the loader stops
/// and joins its threads.
pub struct Loader {
    job: Arc<Job>,
    workers: usize,
    prefetch: usize,
    /// Next batch to hand out.
    next: usize,
    /// Next batch index to give the workers.
    issued: usize,
    pending: BTreeMap<usize, Result<Batch>>,
    running: Option<Running>,
    /// A problem found at construction, reported by the first `next`.
    error: Option<anyhow::Error>,
}

impl Loader {
    /// A loader over `order` (indices into `set`) in batches of `batch_size`, `view` of
    /// each image, with `workers` threads (0: one per available core) and up to `prefetch`
    /// ready batches queued. Threads start on the first `next`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        set: Arc<ImageSet>,
        order: Vec<usize>,
        norm: Arc<Normalize>,
        aug: Arc<Augment>,
        schedule: Schedule,
    ) -> Loader {
        let Schedule {
            batch_size,
            view,
            seed,
            epoch,
            workers,
            prefetch,
        } = schedule;
        let workers = if workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            workers
        };
        let error = if batch_size == 0 && !order.is_empty() {
            Some(anyhow!("batch size is 0"))
        } else {
            order
                .iter()
                .find(|&&i| i >= set.len())
                .map(|&i| anyhow!("order holds image {i}, the set has {} images", set.len()))
        };
        Loader {
            job: Arc::new(Job {
                set,
                order,
                batch_size,
                view,
                norm,
                aug,
                seed,
                epoch,
            }),
            workers,
            prefetch: prefetch.max(1),
            next: 0,
            issued: 0,
            pending: BTreeMap::new(),
            running: None,
            error,
        }
    }

    /// Starts at batch `batch` instead of 0 (resuming mid-epoch): the batches are the same
    /// as those an uninterrupted loader would yield from there. Only before the first
    /// `next`.
    pub fn start_at(mut self, batch: usize) -> Loader {
        if self.running.is_none() {
            let b = batch.min(self.batches());
            self.next = b;
            self.issued = b;
        }
        self
    }

    /// Number of batches in the epoch (all of them, whatever `start_at`).
    pub fn batches(&self) -> usize {
        self.job.batches()
    }

    fn start(&mut self) {
        let (work_tx, work_rx) = channel::<usize>();
        let (ready_tx, ready_rx) = sync_channel::<(usize, Result<Batch>)>(self.prefetch);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let mut threads = Vec::with_capacity(self.workers);
        for w in 0..self.workers {
            let (job, work_rx, ready_tx) = (self.job.clone(), work_rx.clone(), ready_tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("loader-{w}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for an index.
                    let b = match work_rx.lock() {
                        Ok(rx) => match rx.recv() {
                            Ok(b) => b,
                            Err(_) => return,
                        },
                        Err(_) => return,
                    };
                    let result =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.make(b)))
                            .unwrap_or_else(|_| {
                                Err(anyhow!("loader worker panicked on batch {b}"))
                            });
                    if ready_tx.send((b, result)).is_err() {
                        return;
                    }
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    self.error = Some(anyhow!("cannot start a loader thread: {e}"));
                    break;
                }
            }
        }
        self.running = Some(Running {
            work: Some(work_tx),
            ready: Some(ready_rx),
            threads,
        });
        // The window: what may be queued or in progress ahead of the consumer.
        let window = self.prefetch + self.workers;
        while self.issued < self.batches() && self.issued < self.next + window {
            self.issue();
        }
    }

    fn issue(&mut self) {
        if let Some(Running { work: Some(tx), .. }) = &self.running {
            let _ = tx.send(self.issued);
        }
        self.issued += 1;
    }

    fn stop(&mut self) {
        if let Some(mut r) = self.running.take() {
            r.work.take();
            r.ready.take();
            for t in r.threads.drain(..) {
                let _ = t.join();
            }
        }
    }
}

impl Iterator for Loader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if let Some(e) = self.error.take() {
            self.next = self.batches();
            self.stop();
            return Some(Err(e));
        }
        if self.next >= self.batches() {
            self.stop();
            return None;
        }
        if self.running.is_none() {
            self.start();
            if let Some(e) = self.error.take() {
                self.next = self.batches();
                self.stop();
                return Some(Err(e));
            }
        }
        loop {
            if let Some(batch) = self.pending.remove(&self.next) {
                self.next += 1;
                if self.issued < self.batches() {
                    self.issue();
                }
                return Some(batch);
            }
            let received = match &self.running {
                Some(Running {
                    ready: Some(rx), ..
                }) => rx.recv(),
                _ => return None,
            };
            match received {
                Ok((b, batch)) => {
                    self.pending.insert(b, batch);
                }
                Err(_) => {
                    self.next = self.batches();
                    self.stop();
                    return Some(Err(anyhow!("the loader's worker threads stopped")));
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batches().saturating_sub(self.next);
        (left, Some(left + usize::from(self.error.is_some())))
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::pattern_set;
    use crate::data::Pca;
    use std::time::{Duration, Instant};

    fn setup() -> (Arc<ImageSet>, Arc<Normalize>, Arc<Augment>) {
        let set = Arc::new(pattern_set(23, 3, 10));
        let norm = Arc::new(Normalize {
            pixel_scale: 1.0 / 255.0,
            mean: Normalize::per_pixel_mean(&set, 1.0 / 255.0, 1),
            std: Some(vec![0.2, 0.3, 0.4]),
        });
        let aug = Arc::new(Augment {
            crop: 8,
            pad: 1,
            flip: true,
            pca: Some(Pca::from_covariance([
                [0.1, 0.02, 0.0],
                [0.02, 0.05, 0.0],
                [0.0, 0.0, 0.01],
            ])),
            pca_std: 0.1,
        });
        (set, norm, aug)
    }

    fn collect(workers: usize, prefetch: usize, order: Vec<usize>, view: View) -> Vec<Batch> {
        let (set, norm, aug) = setup();
        Loader::new(
            set,
            order,
            norm,
            aug,
            Schedule {
                batch_size: 5,
                view,
                seed: 42,
                epoch: 3,
                workers,
                prefetch,
            },
        )
        .map(|b| b.unwrap())
        .collect()
    }

    #[test]
    fn shuffled_is_a_deterministic_permutation() {
        let a = shuffled(100, 1, 0);
        assert_eq!(a, shuffled(100, 1, 0));
        assert_ne!(a, shuffled(100, 1, 1));
        assert_ne!(a, shuffled(100, 2, 0));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert!(shuffled(0, 1, 0).is_empty());
    }

    #[test]
    fn same_batches_for_any_worker_count_and_construction() {
        let order = shuffled(23, 42, 3);
        let one = collect(1, 1, order.clone(), View::Random);
        let three = collect(3, 2, order.clone(), View::Random);
        let again = collect(3, 8, order.clone(), View::Random);
        assert_eq!(one, three);
        assert_eq!(one, again);
        // Ordering, labels and the short last batch.
        assert_eq!(one.len(), 5);
        assert_eq!(
            one.iter().map(|b| b.n).collect::<Vec<_>>(),
            vec![5, 5, 5, 5, 3]
        );
        let set = pattern_set(23, 3, 10);
        let labels: Vec<i64> = one.iter().flat_map(|b| b.y.clone()).collect();
        let want: Vec<i64> = order.iter().map(|&i| set.labels[i] as i64).collect();
        assert_eq!(labels, want);
        for b in &one {
            assert_eq!(b.x.len(), b.n * 3 * 8 * 8);
            assert_eq!(b.y.len(), b.n);
        }
        // Samples are randomized (two batches of the same images differ in their views)...
        let epoch2 = {
            let (set, norm, aug) = setup();
            Loader::new(
                set,
                order.clone(),
                norm,
                aug,
                Schedule {
                    batch_size: 5,
                    view: View::Random,
                    seed: 42,
                    epoch: 4,
                    workers: 2,
                    prefetch: 2,
                },
            )
            .map(|b| b.unwrap())
            .collect::<Vec<_>>()
        };
        assert_ne!(one[0].x, epoch2[0].x);
        // ...and the centre view matches `prepare` sample by sample.
        let centre = collect(2, 1, order.clone(), View::Centre);
        let (set, norm, aug) = setup();
        let mut out = vec![0.0; 3 * 64];
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        prepare(
            &set,
            order[7],
            &norm,
            &aug,
            View::Centre,
            &mut rng,
            &mut out,
        )
        .unwrap();
        assert_eq!(&centre[1].x[2 * 192..3 * 192], &out[..]);
        // Resuming mid-epoch reproduces the remaining batches.
        let (set, norm, aug) = setup();
        let resumed: Vec<Batch> = Loader::new(
            set,
            order,
            norm,
            aug,
            Schedule {
                batch_size: 5,
                view: View::Random,
                seed: 42,
                epoch: 3,
                workers: 2,
                prefetch: 1,
            },
        )
        .start_at(2)
        .map(|b| b.unwrap())
        .collect();
        assert_eq!(resumed, one[2..]);
    }

    #[test]
    fn edge_cases_are_errors_or_empty() {
        let (set, norm, aug) = setup();
        let mut l = Loader::new(
            set.clone(),
            vec![],
            norm.clone(),
            aug.clone(),
            Schedule {
                batch_size: 4,
                view: View::Centre,
                seed: 0,
                epoch: 0,
                workers: 2,
                prefetch: 2,
            },
        );
        assert_eq!(l.batches(), 0);
        assert!(l.next().is_none());
        let mut l = Loader::new(
            set.clone(),
            vec![0, 99],
            norm.clone(),
            aug.clone(),
            Schedule {
                batch_size: 4,
                view: View::Centre,
                seed: 0,
                epoch: 0,
                workers: 2,
                prefetch: 2,
            },
        );
        assert!(l.next().unwrap().is_err());
        assert!(l.next().is_none());
        let mut l = Loader::new(
            set.clone(),
            vec![0, 1],
            norm.clone(),
            aug.clone(),
            Schedule {
                batch_size: 0,
                view: View::Centre,
                seed: 0,
                epoch: 0,
                workers: 2,
                prefetch: 2,
            },
        );
        assert!(l.next().unwrap().is_err());
        // A crop too large: every batch is an error, delivered in order, no hang.
        let big = Arc::new(Augment {
            crop: 40,
            ..(*aug).clone()
        });
        let results: Vec<_> = Loader::new(
            set,
            (0..10).collect(),
            norm,
            big,
            Schedule {
                batch_size: 4,
                view: View::Centre,
                seed: 0,
                epoch: 0,
                workers: 2,
                prefetch: 1,
            },
        )
        .collect();
        assert_eq!(results.len(), 3);
        assert!(results.iter().all(|r| r.is_err()));
    }

    #[test]
    fn dropping_early_does_not_hang() {
        let set = Arc::new(pattern_set(64, 3, 64));
        let norm = Arc::new(Normalize {
            pixel_scale: 1.0,
            mean: vec![0.0; 3],
            std: None,
        });
        let aug = Arc::new(Augment {
            crop: 56,
            pad: 0,
            flip: true,
            pca: None,
            pca_std: 0.1,
        });
        let start = Instant::now();
        for workers in [1, 4] {
            let mut l = Loader::new(
                set.clone(),
                shuffled(64 * 50, 0, 0).iter().map(|i| i % 64).collect(),
                norm.clone(),
                aug.clone(),
                Schedule {
                    batch_size: 8,
                    view: View::Random,
                    seed: 0,
                    epoch: 0,
                    workers,
                    prefetch: 2,
                },
            );
            assert_eq!(l.batches(), 400);
            assert!(l.next().unwrap().is_ok());
            drop(l);
            // Never started at all.
            drop(Loader::new(
                set.clone(),
                vec![1, 2],
                norm.clone(),
                aug.clone(),
                Schedule {
                    batch_size: 1,
                    view: View::Random,
                    seed: 0,
                    epoch: 0,
                    workers,
                    prefetch: 1,
                },
            ));
        }
        assert!(start.elapsed() < Duration::from_secs(20));
        // The set is shared only by the test again: the worker threads are gone.
        assert_eq!(Arc::strong_count(&set), 1);
    }
}
