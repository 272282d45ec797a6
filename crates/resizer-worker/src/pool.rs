//! A fixed pool of imaging threads.
//!
//! Each thread owns a [`Pipeline`] (codec handles and resize buffers reused
//! across jobs). The submission channel holds the jobs the worker keeps ready
//! (at least one per thread): the pull loop never holds more than threads plus
//! that, so a send never waits long.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use resizer_core::ImageFormat;
use resizer_core::params::ResizeParams;
use resizer_imaging::{ImagingError, Limits, Pipeline, ResizeOutput, ShrinkOnLoad};
use tokio::sync::oneshot;

use crate::cpu_time::thread_cpu_micros;

/// A finished resize and the CPU time it took.
pub struct PoolOutput {
    /// The pipeline's result.
    pub result: Result<ResizeOutput, ImagingError>,
    /// Thread CPU time, microseconds.
    pub cpu_micros: u64,
}

/// Why a job could not be run on the pool.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The pool is shutting down.
    #[error("the imaging pool is shut down")]
    Closed,
}

/// A closed pool is this process stopping or a bug, never the client's load.
impl resizer_core::PublicError for PoolError {
    fn code(&self) -> resizer_core::ErrorCode {
        resizer_core::ErrorCode::Internal
    }
}

struct Task {
    input: Bytes,
    params: ResizeParams,
    format: ImageFormat,
    /// Overrides the pool's shrink-on-load setting for this job (a tenant's flag).
    shrink_on_load: Option<ShrinkOnLoad>,
    /// Past it the pipeline stops at its next stage boundary.
    deadline: Option<Instant>,
    reply: oneshot::Sender<PoolOutput>,
}

/// The imaging threads.
pub struct ImagingPool {
    sender: Option<mpsc::SyncSender<Task>>,
    threads: Vec<JoinHandle<()>>,
    size: usize,
    ready: usize,
}

impl ImagingPool {
    /// Starts `threads` imaging threads, with room for `ready` jobs waiting for one.
    pub fn start(threads: usize, ready: usize, limits: Limits) -> Self {
        let threads = threads.max(1);
        let (sender, receiver) = mpsc::sync_channel::<Task>(ready.max(threads));
        let receiver = std::sync::Arc::new(std::sync::Mutex::new(receiver));
        let handles = (0..threads)
            .map(|i| {
                let receiver = receiver.clone();
                std::thread::Builder::new()
                    .name(format!("imaging-{i}"))
                    .spawn(move || imaging_thread(receiver, limits))
                    .expect("spawning an imaging thread")
            })
            .collect();
        Self {
            sender: Some(sender),
            threads: handles,
            size: threads,
            ready,
        }
    }

    /// Returns the number of threads.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Returns how many jobs the pool takes without making a caller wait: one
    /// running per thread and the ready slots. A worker holds no more than this.
    pub fn capacity(&self) -> usize {
        self.size + self.ready
    }

    /// Runs one resize on a pool thread and waits for it; the work stops at
    /// the first stage boundary after `deadline`. `shrink_on_load`, when
    /// given, replaces the pool's setting for this job.
    pub async fn run(
        &self,
        input: Bytes,
        params: ResizeParams,
        format: ImageFormat,
        shrink_on_load: Option<ShrinkOnLoad>,
        deadline: Option<Instant>,
    ) -> Result<PoolOutput, PoolError> {
        let (reply, receive) = oneshot::channel();
        let sender = self.sender.as_ref().ok_or(PoolError::Closed)?.clone();
        let task = Task {
            input,
            params,
            format,
            shrink_on_load,
            deadline,
            reply,
        };
        // The channel has a slot for every job the worker holds beyond the running
        // ones, so the hand-over normally succeeds at once; only another caller
        // sharing the pool could find it full, and then a blocking thread waits.
        match sender.try_send(task) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(task)) => {
                tokio::task::spawn_blocking(move || sender.send(task))
                    .await
                    .map_err(|_| PoolError::Closed)?
                    .map_err(|_| PoolError::Closed)?;
            }
            Err(mpsc::TrySendError::Disconnected(_)) => return Err(PoolError::Closed),
        }
        receive.await.map_err(|_| PoolError::Closed)
    }
}

impl Drop for ImagingPool {
    fn drop(&mut self) {
        self.sender = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn imaging_thread(receiver: std::sync::Arc<std::sync::Mutex<mpsc::Receiver<Task>>>, limits: Limits) {
    let mut pipeline_opt: Option<Pipeline> = None;
    loop {
        let task = {
            let Ok(guard) = receiver.lock() else { return };
            match guard.recv() {
                Ok(task) => task,
                Err(_) => return,
            }
        };
        let started = Instant::now();
        let cpu_start = thread_cpu_micros();
        let input_format = resizer_imaging::probe::sniff(&task.input);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let pipeline = match pipeline_opt.as_mut() {
                Some(p) => p,
                None => pipeline_opt.insert(Pipeline::try_new()?),
            };
            let limits = Limits {
                shrink_on_load: task.shrink_on_load.unwrap_or(limits.shrink_on_load),
                ..limits
            };
            pipeline.run_until(&task.input, &task.params, task.format, &limits, task.deadline)
        }));
        let result = match result {
            Ok(r) => r,
            Err(_) => {
                // A codec panicked: its state is suspect, so build a fresh one next time.
                pipeline_opt = None;
                tracing::error!("imaging pipeline panicked; input refused");
                Err(ImagingError::Undecodable(
                    "the image could not be processed".into(),
                ))
            }
        };
        let cpu_micros = thread_cpu_micros().saturating_sub(cpu_start);
        let format_label = input_format.map_or("unknown", |f| f.as_str());
        metrics::histogram!("resizer_worker_resize_duration_seconds", "format" => format_label)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("resizer_worker_cpu_microseconds_total").increment(cpu_micros);
        if let Ok(out) = &result
            && out.frames > 1
        {
            metrics::counter!("resizer_worker_animations_total").increment(1);
            metrics::counter!("resizer_worker_animation_frames_total").increment(u64::from(out.frames));
        }
        let _ = task.reply.send(PoolOutput { result, cpu_micros });
    }
}
