"""Rate limits, the bandwidth cap, and adaptive concurrency.

* :class:`TokenBucket`: ``rate_per_s`` tokens a second, at most ``burst`` saved up. The request
  limit (``--max-rps``) takes one token per request on the scheduler thread, without blocking;
  the bandwidth cap (``--bwlimit``) takes one token per byte, blocking, from the thread that
  feeds bytes to the socket (awscrt's), so the cap holds for whole files, parts and streams alike.
* :class:`AdaptiveConcurrency`: slow start, then additive increase while throughput still rises,
  multiplicative decrease on throttling (503 SlowDown, 429) or when latency jumps, within
  ``[min, max]`` (AIMD, as TCP congestion control; the latency signal follows TCP Vegas).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import TransferConfig

__all__ = ["AdaptiveConcurrency", "ConcurrencyDecision", "EngineLimits", "TokenBucket"]

#: Longest sleep in :meth:`TokenBucket.take` before it looks at the rate again (seconds).
_TAKE_STEP_S = 0.1


class TokenBucket:
    """Thread-safe token bucket. ``rate_per_s`` > 0; ``burst`` >= 1 is the bucket's capacity."""

    __slots__ = ("_filled", "_lock", "_rate", "_stamp", "_tokens", "burst")

    def __init__(self, rate_per_s: float, burst: float | None = None) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate must be > 0")
        self._rate = float(rate_per_s)
        self.burst = float(burst if burst is not None else max(1.0, rate_per_s / 10))
        self._tokens = self.burst
        self._filled = 0.0  # tokens added since creation, burst cap or not (a debtor waits for its mark)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    @property
    def rate_per_s(self) -> float:
        return self._rate

    def _refill(self, now: float) -> None:
        added = (now - self._stamp) * self._rate
        self._filled += added
        self._tokens = min(self.burst, self._tokens + added)
        self._stamp = now

    def set_rate(self, rate_per_s: float, burst: float | None = None) -> None:
        """From now on ``rate_per_s`` tokens a second and at most ``burst`` saved up (None: as at
        creation, a tenth of the rate); tokens saved beyond the new burst are dropped. A caller
        sleeping in :meth:`take` sees the new rate within 0.1 s (a cluster's shares, see
        :mod:`s3pump.cluster.sharing`).

        Raises:
            ValueError: ``rate_per_s`` <= 0.
        """
        if rate_per_s <= 0:
            raise ValueError("rate must be > 0")
        with self._lock:
            self._refill(time.monotonic())
            self._rate = float(rate_per_s)
            self.burst = float(burst if burst is not None else max(1.0, rate_per_s / 10))
            self._tokens = min(self._tokens, self.burst)

    def try_take(self, n: float = 1.0) -> float:
        """Take ``n`` tokens if they are there and return 0.0; else take nothing and return the
        seconds until they will be."""
        with self._lock:
            now = time.monotonic()
            self._refill(now)
            if self._tokens >= n:
                self._tokens -= n
                return 0.0
            return (n - self._tokens) / self._rate

    def wait_s(self, n: float = 1.0) -> float:
        """Seconds until ``n`` tokens are there (0.0: now); takes nothing."""
        with self._lock:
            self._refill(time.monotonic())
            return 0.0 if self._tokens >= n else (n - self._tokens) / self._rate

    def take(self, n: float) -> None:
        """Take ``n`` tokens, sleeping as long as needed (the debt model: a take larger than the
        burst is allowed and paid back by sleeping, so large reads need no splitting)."""
        with self._lock:
            self._refill(time.monotonic())
            self._tokens -= n
            if self._tokens >= 0:
                return
            mark = self._filled - self._tokens  # paid back once this many tokens have been added
        while True:  # in steps, so a new rate (set_rate) applies to a debt already owed
            with self._lock:
                self._refill(time.monotonic())
                owed = mark - self._filled
                rate = self._rate
            if owed <= 0:
                return
            time.sleep(min(owed / rate, _TAKE_STEP_S))


@dataclass(frozen=True, slots=True)
class ConcurrencyDecision:
    """One adjustment of the adaptive controller (emitted as an event and logged)."""

    old: int
    new: int
    reason: str
    throughput_bps: float
    latency_s: float


class AdaptiveConcurrency:
    """AIMD over the number of requests in flight, in windows of ``interval_s``.

    The window's score is throughput: bytes plus ``request_weight_bytes`` per request, so runs of
    small objects count too.

    * **Slow start** (until the first cut or the first window without gain): the limit doubles
      each window while the score rises by more than ``gain_threshold``.
    * **Throttling** (503 SlowDown, 429): the limit is cut at once, by ``decrease_factor``
      (multiplicative decrease; by half when it ends slow start, as TCP's slow-start threshold, since
      the doubling may have overshot the capacity as much), at most once per ``cut_interval_s``; slow start
      ends; one window's hold follows; the limit at which throttling began becomes a ceiling that growth stays under.
    * **Latency jump**: a window whose median latency exceeds ``latency_jump`` x the best median
      seen, while the score did not rise, cuts likewise.
    * **Additive increase**: otherwise, while the score still rises, +max(1, limit/8) a window, up
      to one below the ceiling; when it stops rising the limit holds, and every ``probe_windows``
      windows it probes one step up (to the ceiling, and past it if that window is not throttled)
      to find capacity that has appeared.
    """

    def __init__(self, *, initial: int, minimum: int, maximum: int, interval_s: float = 0.25,
                 decrease_factor: float = 0.8, latency_jump: float = 3.0, gain_threshold: float = 0.05,
                 request_weight_bytes: int = 64 * 1024, probe_windows: int = 16,
                 cut_interval_s: float = 0.02) -> None:
        self.minimum = max(1, minimum)
        self.maximum = max(self.minimum, maximum)
        self.limit = min(max(initial, self.minimum), self.maximum)
        self.interval_s = interval_s
        self.decrease_factor = decrease_factor
        self.latency_jump = latency_jump
        self.gain_threshold = gain_threshold
        self.request_weight_bytes = request_weight_bytes
        self.probe_windows = probe_windows
        self.slow_start = True
        self._window_start = time.monotonic()
        self._bytes = 0
        self._requests = 0
        self._latencies: list[float] = []
        self._last_score: float | None = None
        self._best_latency: float | None = None
        self._hold = 0
        self._flat = 0
        self.cut_interval_s = cut_interval_s
        self.ceiling: int | None = None  # the limit at which throttling (or a latency jump) last began
        self._last_cut = -1e9
        self._probing = False
        self._window = 0

    def on_success(self, size_bytes: int, latency_s: float) -> None:
        self._bytes += size_bytes
        self._requests += 1
        if len(self._latencies) < 4096:
            self._latencies.append(latency_s)

    def on_throttled(self, now: float | None = None) -> ConcurrencyDecision | None:
        """A request was throttled: cut now (at most once per ``cut_interval_s``)."""
        now = time.monotonic() if now is None else now
        if now - self._last_cut < self.cut_interval_s:
            return None
        self._last_cut = now
        return self._cut("throttled (503 SlowDown / 429)", 0.0, 0.0)

    def _cut(self, reason: str, score: float, latency_s: float) -> ConcurrencyDecision | None:
        old = self.limit
        self.ceiling = old if self.ceiling is None else min(self.ceiling, old) if not self._probing else old
        self._probing = False
        # the first throttle of slow start halves the limit (TCP's slow-start threshold): the doubling may have
        # overshot the server's capacity by as much; later throttles, near the capacity found, take off a fifth
        factor = 0.5 if self.slow_start else self.decrease_factor
        self.limit = max(self.minimum, int(old * factor))
        self.slow_start = False
        self._hold = 1
        self._flat = 0
        if self.limit == old:
            return None
        return ConcurrencyDecision(old, self.limit, reason, score, latency_s)

    def maybe_adjust(self, now: float | None = None) -> ConcurrencyDecision | None:
        """Close the window if ``interval_s`` has passed; return the decision if the limit changed."""
        now = time.monotonic() if now is None else now
        elapsed = now - self._window_start
        if elapsed < self.interval_s:
            return None
        score = (self._bytes + self._requests * self.request_weight_bytes) / elapsed
        lat = sorted(self._latencies)[len(self._latencies) // 2] if self._latencies else 0.0
        idle = self._requests == 0
        self._window_start, self._bytes, self._requests, self._latencies = now, 0, 0, []
        self._window += 1
        if idle:
            return None
        old = self.limit
        reason = "hold"
        rose = self._last_score is None or score > self._last_score * (1 + self.gain_threshold)
        if lat and (self._best_latency is None or lat < self._best_latency):
            self._best_latency = lat
        jumped = bool(self._best_latency and lat > self.latency_jump * self._best_latency)
        if self._probing and not self._hold:  # a probe window passed without throttling: raise the ceiling
            self._probing = False
            if self.ceiling is not None and self.limit >= self.ceiling:
                self.ceiling = self.limit + 1
        cap = self.maximum if self.ceiling is None else max(self.minimum, self.ceiling - 1)
        if self._hold:
            self._hold -= 1
        elif jumped and not rose and self.limit > self.minimum:
            self._last_score = score
            return self._cut("latency jump", score, lat)
        elif rose and self.slow_start:
            self.limit = min(self.maximum, self.limit * 2)
            reason = "slow start: throughput rising"
        elif rose and self.limit < cap:
            self.limit = min(cap, self.limit + max(1, self.limit // 8))
            self._flat = 0
            reason = "throughput rising"
        else:
            self.slow_start = False
            self._flat += 1
            if self._flat >= self.probe_windows and self.limit < self.maximum:
                self._flat = 0
                self._probing = True
                self.limit = min(self.maximum, self.limit + max(1, self.limit // 16))
                reason = "probing"
        self._last_score = score
        if self.limit == old:
            return None
        return ConcurrencyDecision(old, self.limit, reason, score, lat)


@dataclass(slots=True)
class EngineLimits:
    """The limits an engine obeys: the request rate, the bandwidth cap and adaptive concurrency
    (each None when off). An engine makes its own from its config; a process that runs many
    engines one after another (a cluster worker, one per shard) makes one and hands it to each,
    so a burst is granted once per process and adaptive concurrency keeps what it learnt."""

    rps: TokenBucket | None
    bandwidth: TokenBucket | None
    adaptive: AdaptiveConcurrency | None

    @classmethod
    def from_config(cls, config: TransferConfig, *, share: int = 1) -> EngineLimits:
        """``--max-rps``/``--rps-burst``, ``--bwlimit`` (bytes/s) and ``--concurrency auto``.

        ``share``: how many processes start at once against the same server (a cluster's workers):
        adaptive concurrency in each has its share of ``--min-concurrency`` as the floor (so together
        they can back off where one process would) and slow-starts from that floor.
        """
        rps = TokenBucket(config.max_rps, config.rps_burst) if config.max_rps else None
        bandwidth = (TokenBucket(config.max_bandwidth_bps, _bandwidth_burst(config.max_bandwidth_bps))
                     if config.max_bandwidth_bps else None)
        # --concurrency auto starts at 16 (within the bounds) and slow-starts from there
        share = max(1, share)
        minimum = max(1, config.min_concurrency // share)
        # several processes slow-start from their floor: together they start below one process's 16
        # (their first requests all arrive at once, and each learns of throttling only from its own)
        initial = min(config.max_concurrency, max(minimum, 16 if share == 1 else minimum))
        adaptive = (AdaptiveConcurrency(initial=initial, minimum=minimum, maximum=config.max_concurrency)
                    if config.adaptive_concurrency else None)
        return cls(rps, bandwidth, adaptive)

    def reshare(self, bandwidth_bps: float | None, rps: float | None, rps_burst: float | None) -> None:
        """This process's new share of a cluster's global limits (bytes/s, requests/s, requests), set
        while engines run (:mod:`s3pump.cluster.sharing`); a limit that is off here stays off."""
        if self.bandwidth is not None and bandwidth_bps:
            self.bandwidth.set_rate(bandwidth_bps, _bandwidth_burst(bandwidth_bps))
        if self.rps is not None and rps:
            self.rps.set_rate(rps, rps_burst)


def _bandwidth_burst(bps: float) -> float:
    """The bandwidth bucket's burst for a cap of ``bps`` bytes/s: a quarter second (at least 256 KiB).
    awscrt's threads do other work between reads, and tokens that overflow a smaller bucket meanwhile
    would be lost (the run would average under the cap)."""
    return max(256 * 1024, bps / 4)
