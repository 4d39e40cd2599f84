//! Live packet sources for `flowdoc live`: an interface through libpcap (the `pcap` crate,
//! behind this crate's `pcap` feature: it needs libpcap's headers), with a BPF filter, snap
//! length, promiscuous and immediate mode and libpcap's drop counters; and a capture file
//! replayed at its recorded pace, which stands in for an interface in demos and tests. What is
//! done with the packets is the pipeline's business (`flowdoc_pipeline::Engine::push`): this
//! crate is only the source.

mod replay;

pub use replay::Replay;

use std::time::Duration;

/// How to open the interface.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub interface: String,
    /// A BPF filter in tcpdump's syntax.
    pub filter: Option<String>,
    pub snaplen: i32,
    pub promisc: bool,
    /// How long one wait for packets may last before control comes back (for timers and
    /// signals).
    pub poll: Duration,
    /// The kernel buffer, in bytes.
    pub buffer_bytes: i32,
}

/// What went wrong, naming the interface.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("{interface}: cannot capture: {message}")]
    Open { interface: String, message: String },
    #[error("{interface}: filter {filter:?} rejected: {message}")]
    Filter {
        interface: String,
        filter: String,
        message: String,
    },
    #[error("{interface}: capture failed: {message}")]
    Read { interface: String, message: String },
    #[error("cannot list interfaces: {0}")]
    List(String),
    #[error("{0}")]
    Replay(String),
}

/// An interface and its description.
#[derive(Debug, Clone)]
pub struct Interface {
    pub name: String,
    pub description: Option<String>,
    pub addresses: Vec<String>,
}

/// The interfaces libpcap can open.
#[cfg(feature = "pcap")]
pub fn interfaces() -> Result<Vec<Interface>, LiveError> {
    let list = pcap::Device::list().map_err(|e| LiveError::List(e.to_string()))?;
    Ok(list
        .into_iter()
        .map(|d| Interface {
            name: d.name,
            description: d.desc,
            addresses: d.addresses.iter().map(|a| a.addr.to_string()).collect(),
        })
        .collect())
}

/// libpcap's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub received: u64,
    /// Dropped because flowdoc did not read fast enough (the buffer was full).
    pub dropped: u64,
    /// Dropped by the interface or its driver.
    pub if_dropped: u64,
}

/// One captured packet.
#[derive(Debug)]
pub struct Frame<'a> {
    pub ts_ns: i64,
    pub data: &'a [u8],
    pub orig_len: u32,
}

/// What a source has for the caller now.
#[derive(Debug)]
pub enum Event<'a> {
    Packet {
        link_type: u16,
        frame: Frame<'a>,
    },
    /// Nothing within the poll interval: time for timers and signals.
    Idle,
    /// The source has no more packets (a replayed file's end).
    End,
}

/// An open capture.
#[cfg(feature = "pcap")]
pub struct Live {
    cap: pcap::Capture<pcap::Active>,
    interface: String,
    link_type: u16,
    /// How long one wait for packets lasts at most, in milliseconds.
    poll_ms: i32,
}

#[cfg(feature = "pcap")]
impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("interface", &self.interface)
            .field("link_type", &self.link_type)
            .finish()
    }
}

#[cfg(feature = "pcap")]
impl Live {
    pub fn open(cfg: &LiveConfig) -> Result<Live, LiveError> {
        let open_err = |e: pcap::Error| LiveError::Open {
            interface: cfg.interface.clone(),
            message: e.to_string(),
        };
        let poll_ms = i32::try_from(cfg.poll.as_millis())
            .unwrap_or(i32::MAX)
            .max(1);
        // Not immediate mode: on Linux that takes a ring of frames of the interface's largest
        // packet each (64 KiB on lo: a thousand frames in 64 MiB, full after a few
        // milliseconds at 300,000 packets/s). Without it, packets are packed one after
        // another in blocks that the kernel hands over when full or after `poll`: the same
        // buffer holds hundreds of thousands of small packets, and the live view is at most
        // one poll interval late.
        let cap = pcap::Capture::from_device(cfg.interface.as_str())
            .map_err(open_err)?
            .promisc(cfg.promisc)
            .snaplen(cfg.snaplen)
            .timeout(poll_ms)
            .buffer_size(cfg.buffer_bytes)
            .open()
            .map_err(open_err)?;
        // On a loopback interface every packet passes twice, going out and coming in, and
        // libpcap throws the outgoing copy away after the kernel has copied it into the
        // buffer (and counted it as received). Only what comes in is taken: every packet
        // once, for half the copying and half the buffer, and counters that add up.
        let loopback = pcap::Device::list()
            .map(|l| {
                l.iter()
                    .any(|d| d.name == cfg.interface && d.flags.is_loopback())
            })
            .unwrap_or(false);
        if loopback {
            cap.direction(pcap::Direction::In).map_err(open_err)?;
            ignore_outgoing(&cap);
        }
        // Non-blocking: when nothing is waiting, `next_event` waits on the descriptor itself
        // for at most the poll interval, so timers and signals get their turn on a quiet
        // interface and a busy one is read the moment a block is ready.
        let mut cap = cap.setnonblock().map_err(open_err)?;
        if let Some(f) = &cfg.filter {
            cap.filter(f, true).map_err(|e| LiveError::Filter {
                interface: cfg.interface.clone(),
                filter: f.clone(),
                message: e.to_string(),
            })?;
        }
        let link_type = u16::try_from(cap.get_datalink().0).unwrap_or(u16::MAX);
        Ok(Live {
            cap,
            interface: cfg.interface.clone(),
            link_type,
            poll_ms,
        })
    }

    /// The interface's link type (a LINKTYPE_ value, as in pcap files).
    pub fn link_type(&self) -> u16 {
        self.link_type
    }

    /// The next packet, or `Idle` when the poll interval passed without one.
    pub fn next_event(&mut self) -> Result<Event<'_>, LiveError> {
        let link_type = self.link_type;
        let (fd, poll_ms) = (
            std::os::unix::io::AsRawFd::as_raw_fd(&self.cap),
            self.poll_ms,
        );
        match self.cap.next_packet() {
            Ok(p) => {
                let ts = p.header.ts;
                // time_t and suseconds_t are 32-bit on some platforms.
                #[allow(clippy::useless_conversion)]
                let ts_ns = i64::from(ts.tv_sec) * 1_000_000_000 + i64::from(ts.tv_usec) * 1_000;
                Ok(Event::Packet {
                    link_type,
                    frame: Frame {
                        ts_ns,
                        data: p.data,
                        orig_len: p.header.len,
                    },
                })
            }
            Err(pcap::Error::TimeoutExpired) => {
                // Nothing waiting: wait until something is (or the poll interval passes),
                // then control goes back to the caller.
                wait(fd, poll_ms);
                Ok(Event::Idle)
            }
            Err(e) => Err(LiveError::Read {
                interface: self.interface.clone(),
                message: e.to_string(),
            }),
        }
    }

    /// libpcap's counters so far.
    pub fn counters(&mut self) -> Counters {
        self.cap
            .stats()
            .map(|s| Counters {
                received: u64::from(s.received),
                dropped: u64::from(s.dropped),
                if_dropped: u64::from(s.if_dropped),
            })
            .unwrap_or_default()
    }
}

/// Waits until the descriptor has something to read, `ms` milliseconds pass or a signal comes.
#[cfg(feature = "pcap")]
fn wait(fd: std::os::unix::io::RawFd, ms: i32) {
    let mut fds = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the count given; the descriptor is libpcap's, open while
    // the capture lives. An error (EINTR from a signal) or the timeout only ends the wait
    // early: the caller reads again.
    #[allow(unsafe_code)]
    unsafe {
        libc::poll(&mut fds, 1, ms);
    }
}

/// Asks the kernel (Linux 4.20 and later) not to copy outgoing packets into the capture's
/// buffer at all; on older kernels libpcap's own direction filter still drops them.
#[cfg(all(feature = "pcap", target_os = "linux"))]
fn ignore_outgoing(cap: &pcap::Capture<pcap::Active>) {
    /// From linux/if_packet.h.
    const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
    let on: libc::c_int = 1;
    // SAFETY: a valid int option for the length given, on libpcap's open socket; failure
    // (an older kernel) changes nothing.
    #[allow(unsafe_code)]
    unsafe {
        libc::setsockopt(
            std::os::unix::io::AsRawFd::as_raw_fd(cap),
            libc::SOL_PACKET,
            PACKET_IGNORE_OUTGOING,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(all(feature = "pcap", not(target_os = "linux")))]
fn ignore_outgoing(_: &pcap::Capture<pcap::Active>) {}
