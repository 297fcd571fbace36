//! The response future of the edge layers that decide before the request goes on: an answer
//! given at once (a refusal), the inner service's own future (no box, no clone of the stack
//! below), or — only where the decision itself has to wait (Redis, OAuth introspection,
//! reading a body) — the decider's future, then the inner service's: one box (the decider's),
//! a state machine here instead of a second boxed future around both.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::Request;
use axum::response::Response;
use futures::future::BoxFuture;
use pin_project_lite::pin_project;
use tower::Service;

/// A decision that has to wait: `Ok(request)` goes on to the inner service, `Err(response)`
/// is the answer.
pub type Pending = BoxFuture<'static, Result<Request, Response>>;

pin_project! {
    /// See the module documentation. `F` is the future of the inner service `S`.
    #[project = Projected]
    pub enum LayerFuture<F, S> {
        /// Answered without calling the inner service (`None` once the answer was given).
        Answered { response: Option<Response> },
        /// The inner service's future, as it is.
        Inner { #[pin] future: F },
        /// Waiting for the decision; then `service` (polled ready) is called with the request.
        Deciding { decision: Pending, service: Option<S> },
    }
}

impl<F, S> LayerFuture<F, S> {
    /// The answer `response`, without calling the inner service.
    pub fn answer(response: Response) -> Self {
        LayerFuture::Answered {
            response: Some(response),
        }
    }

    /// The inner service's future.
    pub fn inner(future: F) -> Self {
        LayerFuture::Inner { future }
    }

    /// Wait for `decision`, then call `service` (polled ready: see [`take_ready`]) with the
    /// request it passes on.
    pub fn deciding(decision: Pending, service: S) -> Self {
        LayerFuture::Deciding {
            decision,
            service: Some(service),
        }
    }
}

/// Where a poll of a [`LayerFuture`] goes next.
enum Next<F> {
    Done(Response),
    Call(F),
}

impl<F, S, E> Future for LayerFuture<F, S>
where
    S: Service<Request, Response = Response, Error = E, Future = F>,
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let next = match self.as_mut().project() {
            Projected::Answered { response } => {
                return Poll::Ready(Ok(response.take().unwrap_or_else(polled_again)));
            }
            Projected::Inner { future } => return future.poll(cx),
            Projected::Deciding { decision, service } => {
                match (ready!(decision.as_mut().poll(cx)), service.take()) {
                    (Ok(request), Some(mut service)) => Next::Call(service.call(request)),
                    (Err(response), _) => Next::Done(response),
                    (Ok(_), None) => Next::Done(polled_again()),
                }
            }
        };
        match next {
            Next::Call(future) => {
                self.set(LayerFuture::Inner { future });
                self.poll(cx)
            }
            Next::Done(response) => {
                // The decider's future is finished: never poll it again.
                self.set(LayerFuture::Answered { response: None });
                Poll::Ready(Ok(response))
            }
        }
    }
}

/// The reply of a future polled again after it gave its answer: the contract of `Future` is
/// broken by the caller; an empty 500 is the least harmful reply and cannot panic.
fn polled_again() -> Response {
    let mut response = Response::default();
    *response.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
    response
}

/// The inner service to move into a [`LayerFuture::deciding`] future: `service` itself (which
/// was polled ready), leaving a fresh clone in its place, as tower's documentation prescribes.
pub fn take_ready<S: Clone>(service: &mut S) -> S {
    let fresh = service.clone();
    std::mem::replace(service, fresh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use std::convert::Infallible;
    use std::future::{Ready, ready};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn status(code: u16) -> Response {
        let mut response = Response::default();
        *response.status_mut() = StatusCode::from_u16(code).unwrap();
        response
    }

    /// An inner service answering 200, counting its calls.
    #[derive(Clone, Default)]
    struct Counted(Arc<AtomicUsize>);

    impl Service<Request> for Counted {
        type Response = Response;
        type Error = Infallible;
        type Future = Ready<Result<Response, Infallible>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: Request) -> Self::Future {
            self.0.fetch_add(1, Ordering::SeqCst);
            ready(Ok(status(200)))
        }
    }

    type Future = LayerFuture<Ready<Result<Response, Infallible>>, Counted>;

    #[tokio::test]
    async fn each_variant_yields_its_response() {
        let service = Counted::default();
        let answered: Future = LayerFuture::answer(status(403));
        assert_eq!(answered.await.unwrap().status(), 403);
        let inner: Future = LayerFuture::inner(ready(Ok(status(201))));
        assert_eq!(inner.await.unwrap().status(), 201);
        let passed: Future = LayerFuture::deciding(
            Box::pin(async {
                tokio::task::yield_now().await;
                Ok(Request::default())
            }),
            service.clone(),
        );
        assert_eq!(passed.await.unwrap().status(), 200);
        assert_eq!(service.0.load(Ordering::SeqCst), 1, "called once");
        let refused: Future = LayerFuture::deciding(
            Box::pin(async {
                tokio::task::yield_now().await;
                Err(status(429))
            }),
            service.clone(),
        );
        assert_eq!(refused.await.unwrap().status(), 429);
        assert_eq!(
            service.0.load(Ordering::SeqCst),
            1,
            "not called on a refusal"
        );
    }

    /// Polled again after its answer, a waiting future does not poll the decider's finished
    /// future again (an `async` block would panic): it answers 500.
    #[test]
    fn a_finished_decision_is_never_polled_again() {
        let mut refused: Future =
            LayerFuture::deciding(Box::pin(async { Err(status(429)) }), Counted::default());
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let mut refused = Pin::new(&mut refused);
        let first = refused.as_mut().poll(&mut cx);
        assert!(matches!(first, Poll::Ready(Ok(ref r)) if r.status() == 429));
        let again = refused.as_mut().poll(&mut cx);
        assert!(matches!(again, Poll::Ready(Ok(ref r)) if r.status() == 500));
    }
}
