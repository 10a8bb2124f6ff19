//! The EAL: initialised once per process, lcores, and jobs launched on worker lcores.

use std::ffi::{CString, c_char, c_int};
use std::sync::atomic::{AtomicBool, Ordering};

use dpdk_sys as sys;

use super::{DpdkError, Errno};

/// Program name put in front of the EAL arguments (`argv[0]`).
pub(super) const PROGRAM: &str = "svm";

/// Set by the first [`Eal::init`]; DPDK cannot initialise twice in one process.
pub(super) static EAL_STARTED: AtomicBool = AtomicBool::new(false);

/// Proof that the EAL is initialised; the EAL lives until the process exits.
#[derive(Clone, Debug)]
pub struct Eal {
    pub(super) _private: (),
}

impl Eal {
    /// Initialise the EAL with `args` (EAL options only, without a program name; for example
    /// `["--no-huge", "-m", "128", "--no-pci", "--vdev=net_null0", "-l", "0"]`). Works once per
    /// process: a second call fails with [`DpdkError::AlreadyInitialized`], also after a failed
    /// first call, since DPDK cannot retry either.
    ///
    /// Pins the calling thread to the main lcore.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        let mut owned = Vec::with_capacity(args.len().saturating_add(1));
        for arg in std::iter::once(PROGRAM).chain(args.iter().map(String::as_str)) {
            owned.push(CString::new(arg).map_err(|_| DpdkError::NulInArgument(arg.to_owned()))?);
        }
        let argc = c_int::try_from(owned.len())
            .map_err(|_| DpdkError::Config("too many EAL arguments"))?;
        if EAL_STARTED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::AlreadyInitialized);
        }
        // rte_eal_init keeps pointers into argv (and getopt may permute the array): both the
        // strings and the array are leaked on purpose, once per process.
        let argv: &'static mut [*mut c_char] = Vec::leak(
            owned
                .into_iter()
                .map(CString::into_raw)
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect(),
        );
        // SAFETY: argv holds argc valid NUL-terminated strings followed by a NULL, all leaked so
        // they outlive the EAL; EAL_STARTED guarantees this is the process's only call.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(DpdkError::EalInit(Errno::last()));
        }
        Ok(Eal { _private: () })
    }

    /// Number of ports the EAL probed (vdevs and bound NICs).
    pub fn port_count(&self) -> u16 {
        // SAFETY: the EAL is initialised (self exists); no arguments.
        unsafe { sys::rte_eth_dev_count_avail() }
    }

    /// The port id of a device, by its name (`net_pcap0`, `0000:00:04.0`, ...).
    pub fn port_by_name(&self, name: &str) -> Result<u16, DpdkError> {
        let c = CString::new(name).map_err(|_| DpdkError::NulInArgument(name.to_owned()))?;
        let mut id = 0u16;
        // SAFETY: c is a valid NUL-terminated string and id a valid u16 to write, both alive for
        // the call; the EAL is initialised.
        let ret = unsafe { sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if ret < 0 {
            return Err(DpdkError::NoSuchPort {
                name: name.to_owned(),
                errno: Errno::from_ret(ret),
            });
        }
        Ok(id)
    }

    /// The lcore the calling thread runs as (`u32::MAX`, `LCORE_ID_ANY`, for non-EAL threads).
    pub fn lcore_id(&self) -> u32 {
        // SAFETY: reads a thread-local; no preconditions.
        unsafe { sys::shim_lcore_id() }
    }
}

impl Eal {
    /// Lcores the EAL runs (`-l`/`--lcores`/`-c`), the main one included.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: the EAL is initialised; no arguments.
        unsafe { sys::rte_lcore_count() }
    }

    /// The main lcore: the thread that called [`Eal::init`].
    pub fn main_lcore(&self) -> u32 {
        // SAFETY: the EAL is initialised; no arguments.
        unsafe { sys::rte_get_main_lcore() }
    }

    /// The worker lcores (every enabled lcore but the main one), in increasing order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        // rte_get_next_lcore(-1, ...) starts the walk; it returns RTE_MAX_LCORE at the end.
        let mut i = u32::MAX;
        loop {
            // SAFETY: the EAL is initialised; i is any lcore id or -1 as unsigned, which the
            // call accepts.
            i = unsafe { sys::rte_get_next_lcore(i, 1, 0) };
            if i >= sys::RTE_MAX_LCORE {
                return out;
            }
            out.push(i);
        }
    }

    /// Run `job` on worker lcore `lcore` (an EAL thread pinned to that lcore's CPU), now. The
    /// lcore must be idle (not the main lcore, not running another job). Wait for the job with
    /// [`Launched::wait`]; dropping the handle waits too.
    ///
    /// A job that panics returns -1 (the panic is caught at the lcore's boundary: unwinding into
    /// DPDK's C frames is not allowed).
    pub fn launch<F>(&self, lcore: u32, job: F) -> Result<Launched, DpdkError>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        type Job = Box<dyn FnOnce() -> i32 + Send>;
        extern "C" fn trampoline(arg: *mut std::ffi::c_void) -> c_int {
            // SAFETY: arg is the Box<Job> leaked below for this one call; DPDK passes it to
            // exactly one run of this function, so ownership comes back exactly once.
            let job: Box<Job> = unsafe { Box::from_raw(arg.cast::<Job>()) };
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
        }
        let job: Box<Job> = Box::new(Box::new(job));
        let arg = Box::into_raw(job);
        // SAFETY: trampoline has the lcore_function_t signature; arg is a valid Box<Job> whose
        // ownership passes to the lcore on success. The job is 'static and Send, so it may run
        // on another thread for as long as it likes.
        let ret = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg.cast(), lcore) };
        if ret < 0 {
            // SAFETY: the launch failed, so the lcore never saw arg: it is still ours, once.
            drop(unsafe { Box::from_raw(arg) });
            return Err(DpdkError::Launch {
                lcore,
                errno: Errno::from_ret(ret),
            });
        }
        Ok(Launched { lcore, done: false })
    }
}

/// A job running on a worker lcore ([`Eal::launch`]).
#[derive(Debug)]
pub struct Launched {
    pub(super) lcore: u32,
    pub(super) done: bool,
}

impl Launched {
    /// The lcore.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Wait for the job to end; its return value (-1 if it panicked).
    pub fn wait(mut self) -> i32 {
        self.done = true;
        // SAFETY: the EAL is initialised and lcore is a worker lcore we launched on.
        unsafe { sys::rte_eal_wait_lcore(self.lcore) }
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        if !self.done {
            // SAFETY: as in wait.
            unsafe { sys::rte_eal_wait_lcore(self.lcore) };
        }
    }
}
