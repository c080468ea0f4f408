/**
 * Date.now() read at most once per turn of the event loop: the time a burst of work started.
 * On some hosts (virtual machines without a fast clock source) a Date.now() costs over 100 ns,
 * and a request to a pattern read the clock three times (sent, first reply, end), which was
 * most of what it cost beyond a request to a peer id. Within one turn (an I/O callback and its
 * microtasks) the time read first is reused; it is stale by at most the turn's length, which is
 * well under the milliseconds that answer times, pauses and idle limits are measured in. Not for
 * timeouts that must be exact (setTimeout keeps those).
 */
let now = 0;
let fresh = false;
const expire = (): void => {
  fresh = false;
};

/** Date.now() as read first in this turn of the event loop. */
export function turnNow(): number {
  if (!fresh) {
    now = Date.now();
    fresh = true;
    setImmediate(expire).unref();
  }
  return now;
}
