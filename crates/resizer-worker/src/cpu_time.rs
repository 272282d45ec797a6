//! The CPU time consumed by the current thread (not wall time), so metering
//! charges a job for the work it caused and not for time spent waiting.

/// Returns the current thread's CPU time in microseconds.
pub fn thread_cpu_micros() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_thread_cpu_time_advances_with_work_not_sleep() {
        let start = thread_cpu_micros();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let slept = thread_cpu_micros() - start;
        let start = thread_cpu_micros();
        let mut x = 0u64;
        for i in 0..30_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let worked = thread_cpu_micros() - start;
        assert!(slept < 10_000, "sleeping cost {slept} µs of CPU");
        assert!(worked > slept, "work {worked} µs vs sleep {slept} µs");
    }
}
