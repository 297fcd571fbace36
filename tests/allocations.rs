//! Heap allocations of the edge layers' response future ([`RefuseLayer`]), counted with
//! dhat's testing mode. The count is process-wide, so this is a binary of its own without the
//! libtest harness: nothing else runs while a count is taken. Everything the request and the
//! inner service's answer need is built before counting; the futures are polled by hand with a
//! no-op waker (no executor, no task).
//!
//! A decision that has to wait (OAuth token validation, the shared per-IP count in Redis, the
//! step-up check) costs exactly its decider's box: the layer's own future is a state machine
//! around it, not a second boxed future. A decision made in place costs nothing.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::response::Response;
use kasm_mcp::http::refuse::{Decide, Decision, RefuseLayer};
use tower::{Layer, Service};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Passes every request on, in place or after waiting.
#[derive(Clone)]
struct Passes {
    waits: bool,
}

impl Decide for Passes {
    fn decide(&self, request: Request) -> Decision {
        if self.waits {
            Decision::Wait(Box::pin(async move { Ok(request) }))
        } else {
            Decision::Pass(request)
        }
    }
}

/// The inner service: answers with responses built beforehand (a response's body allocates).
#[derive(Clone)]
struct Prebuilt(Arc<Mutex<Vec<Response>>>);

impl Service<Request> for Prebuilt {
    type Response = Response;
    type Error = Infallible;
    type Future = Ready<Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request) -> Self::Future {
        let response = self.0.lock().unwrap().pop().unwrap();
        ready(Ok(response))
    }
}

/// The heap blocks allocated while `decider`'s layer takes one request and answers it (the
/// answer is dropped after counting).
fn blocks_per_request(decider: Passes) -> u64 {
    let answers = Arc::new(Mutex::new(
        (0..2).map(|_| Response::default()).collect::<Vec<_>>(),
    ));
    let mut service = RefuseLayer::new(decider).layer(Prebuilt(answers));
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let mut serve = |request: Request| -> Response {
        assert!(service.poll_ready(&mut cx).is_ready());
        let mut future = pin!(service.call(request));
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(response)) => response,
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => panic!("nothing here waits for real"),
        }
    };
    // Once before counting: lazily built statics do not count.
    let first = serve(Request::default());
    let request = Request::default();
    let before = dhat::HeapStats::get().total_blocks;
    let answer = serve(request);
    let after = dhat::HeapStats::get().total_blocks;
    assert_eq!(answer.status(), 200);
    drop((first, answer));
    after - before
}

/// The one test's name, as the libtest command line names it.
const NAME: &str = "allocations";

/// Speaks as much of libtest's command line as test runners use (`cargo nextest` lists a
/// binary's tests with `--list --format terse`, then runs each by name with `--exact`):
/// `--list` names the one test (and no ignored one); a filter that does not match it runs
/// nothing.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("{NAME}: test");
        }
        return;
    }
    let mut exact = false;
    let mut filters = Vec::new();
    let mut skips = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--exact" => exact = true,
            "--skip" => skips.extend(rest.next()),
            // libtest's options that take a value: the value is not a filter.
            "--test-threads" | "--format" | "--color" | "--logfile" | "-Z" => {
                rest.next();
            }
            option if option.starts_with('-') => {}
            filter => filters.push(filter),
        }
    }
    let matches = |f: &str| if exact { f == NAME } else { NAME.contains(f) };
    let selected = (filters.is_empty() || filters.iter().any(|f| matches(f)))
        && !skips.iter().any(|s| matches(s));
    if selected {
        count();
    }
}

/// The count itself.
fn count() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let in_place = blocks_per_request(Passes { waits: false });
    let waiting = blocks_per_request(Passes { waits: true });
    println!("heap blocks per request: decided in place {in_place}, after a wait {waiting}");
    assert_eq!(in_place, 0, "a decision made in place allocates nothing");
    assert_eq!(
        waiting, 1,
        "a decision that waits allocates its decider's box and nothing more"
    );
    println!("test allocations ... ok");
}
