//! The response future of the edge layers that decide before the request goes on: an answer
//! given at once (a refusal), the inner service's own future (no box, no clone of the stack
//! below), or — only where the decision itself has to wait (Redis, OAuth introspection,
//! reading a body) — a boxed future that decides and then calls a clone of the inner service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::response::Response;
use futures::future::BoxFuture;
use pin_project_lite::pin_project;

pin_project! {
    /// See the module documentation.
    #[project = Projected]
    pub enum LayerFuture<F, E> {
        /// Answered without calling the inner service.
        Answered { response: Option<Response> },
        /// The inner service's future, as it is.
        Inner { #[pin] future: F },
        /// A decision that waits, then the inner service.
        Waiting { future: BoxFuture<'static, Result<Response, E>> },
    }
}

impl<F, E> LayerFuture<F, E> {
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

    /// A decision that has to wait before it calls the inner service.
    pub fn waiting(future: impl Future<Output = Result<Response, E>> + Send + 'static) -> Self {
        LayerFuture::Waiting {
            future: Box::pin(future),
        }
    }
}

impl<F, E> Future for LayerFuture<F, E>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            // Polled again after it gave its answer: the contract of `Future` is broken by the
            // caller; an empty 500 is the least harmful reply and cannot panic.
            Projected::Answered { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                    let mut response = Response::default();
                    *response.status_mut() = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
                    response
                })))
            }
            Projected::Inner { future } => future.poll(cx),
            Projected::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

/// The inner service to move into a [`LayerFuture::waiting`] future: `service` itself (which
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

    fn status(code: u16) -> Response {
        let mut response = Response::default();
        *response.status_mut() = StatusCode::from_u16(code).unwrap();
        response
    }

    #[tokio::test]
    async fn each_variant_yields_its_response() {
        let answered: LayerFuture<std::future::Ready<Result<Response, Infallible>>, Infallible> =
            LayerFuture::answer(status(403));
        assert_eq!(answered.await.unwrap().status(), 403);
        let inner: LayerFuture<_, Infallible> =
            LayerFuture::inner(std::future::ready(Ok(status(200))));
        assert_eq!(inner.await.unwrap().status(), 200);
        let waiting: LayerFuture<std::future::Ready<Result<Response, Infallible>>, Infallible> =
            LayerFuture::waiting(async {
                tokio::task::yield_now().await;
                Ok(status(429))
            });
        assert_eq!(waiting.await.unwrap().status(), 429);
    }
}
