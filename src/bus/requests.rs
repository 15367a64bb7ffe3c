//! Request/reply on the native [`Bus`]: responders (subscriptions whose handler returns the
//! reply), [`Bus::request`] and [`Bus::request_many`]. The broker decides what each answer does
//! ([`Broker::answer`](crate::Broker::answer)); this driver keeps the requester's replies.

use super::*;
use crate::broker::{Answer, AnswerKind, RequestEnd, RequestId};
#[cfg(target_arch = "wasm32")]
use std::pin::Pin;
use std::task::Waker;
#[cfg(target_arch = "wasm32")]
use std::task::{Context, Poll};

/// A responder's synchronous handler: `Ok` is its reply.
pub(super) type RespondFn<P> = Rc<dyn Fn(&Message<P>) -> std::result::Result<P, HandlerError>>;
/// A responder's asynchronous handler: the future's `Ok` is its reply.
pub(super) type RespondAsyncFn<P> =
    Rc<dyn Fn(Message<P>) -> LocalBoxFuture<'static, std::result::Result<P, HandlerError>>>;

/// How long a request waits for replies unless told otherwise.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of [`Bus::request`] and [`Bus::request_many`].
#[derive(Debug, Clone)]
pub struct RequestOptions {
    /// How long to wait for replies (default 5 s); `None` waits as long as a responder may still
    /// answer.
    pub timeout: Option<Duration>,
    /// [`Bus::request_many`]: the most replies to gather (default: one per responder).
    pub max: Option<u32>,
    /// Ordering key of the request's message.
    pub key: Option<String>,
    /// Header pairs of the request's message.
    pub headers: Vec<(String, String)>,
}

impl Default for RequestOptions {
    fn default() -> Self {
        RequestOptions {
            timeout: Some(DEFAULT_REQUEST_TIMEOUT),
            max: None,
            key: None,
            headers: Vec::new(),
        }
    }
}

impl RequestOptions {
    /// The defaults: a 5 s timeout.
    pub fn new() -> Self {
        Self::default()
    }
    /// Waits at most `t` for replies.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    /// Waits as long as a responder may still answer.
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }
    /// Gathers at most `n` replies ([`Bus::request_many`]).
    pub fn max(mut self, n: u32) -> Self {
        self.max = Some(n);
        self
    }
    /// Sets the ordering key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What a pending request received, filled by the bus and read by its requester.
pub(super) struct ReplyBox<P> {
    replies: Vec<P>,
    /// Set when the request ended: `Err` for a request that fails.
    end: Option<Result<()>>,
    /// The last responder failure: what a request that ends without a reply fails with, and
    /// what a timeout names.
    failure: Option<Error>,
    /// `request` (one reply) rather than `request_many`.
    one: bool,
    timeout: Option<Duration>,
    waker: Option<Waker>,
}

impl<P> ReplyBox<P> {
    fn finish(&mut self, end: Result<()>) {
        if self.end.is_none() {
            self.end = Some(end);
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

type SharedBox<P> = Rc<RefCell<ReplyBox<P>>>;

/// Waits for a request's box to end (the JavaScript event loop drives it in the browser).
#[cfg(target_arch = "wasm32")]
struct Ended<P>(SharedBox<P>);

#[cfg(target_arch = "wasm32")]
impl<P> Future for Ended<P> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut b = self.0.borrow_mut();
        if b.end.is_some() {
            Poll::Ready(())
        } else {
            b.waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Gives the request up when its requester stops waiting (the future is dropped).
struct Pending<P: Clone> {
    inner: Weak<Inner<P>>,
    id: RequestId,
}

impl<P: Clone> Drop for Pending<P> {
    fn drop(&mut self) {
        let Some(inner) = self.inner.upgrade() else {
            return;
        };
        if inner.requests.borrow_mut().remove(&self.id).is_some() {
            if let Ok(mut core) = inner.core.try_borrow_mut() {
                core.cancel_request(self.id);
            }
        }
    }
}

/// A request in flight ([`Bus::start_request`], [`Bus::start_request_many`]): what it received so
/// far, whether it ended, and futures that wait for it. Dropping it gives the request up.
pub struct Request<P: Clone + ByteSize + 'static> {
    bus: Bus<P>,
    _pending: Pending<P>,
    b: SharedBox<P>,
}

impl<P: Clone + ByteSize + 'static> Request<P> {
    /// Whether it ended (every answer it takes came, its timeout passed, it failed, or the bus
    /// closed).
    pub fn is_ended(&self) -> bool {
        self.b.borrow().end.is_some()
    }

    /// The replies taken so far, in the order they came.
    pub fn replies_so_far(&self) -> Vec<P> {
        self.b.borrow().replies.clone()
    }

    /// How it ended: `None` while it is pending; `Some(Ok(()))` for a request that ended with
    /// its replies (or, gathering, at its timeout); else the error it failed with.
    pub fn outcome(&self) -> Option<Result<()>> {
        self.b.borrow().end.clone()
    }

    /// Waits for the first reply (see [`Bus::request`]).
    pub async fn reply(self) -> Result<P> {
        self.bus.wait_ended(&self.b).await;
        let mut b = self.b.borrow_mut();
        match b.end.clone() {
            Some(Ok(())) if !b.replies.is_empty() => Ok(b.replies.remove(0)),
            Some(Err(e)) => Err(e),
            _ => Err(Error::new(
                ErrorCode::Timeout,
                "the request ended without a reply",
            )),
        }
    }

    /// Waits until it ends and returns every reply (see [`Bus::request_many`]).
    pub async fn replies(self) -> Result<Vec<P>> {
        self.bus.wait_ended(&self.b).await;
        let mut b = self.b.borrow_mut();
        match b.end.clone() {
            Some(Err(e)) if e.code() == ErrorCode::Closed || b.one => Err(e),
            _ => Ok(std::mem::take(&mut b.replies)),
        }
    }
}

impl<P: Clone + ByteSize + 'static> Bus<P> {
    /// Subscribes a responder: its handler's `Ok` is the reply to a request that reaches it
    /// (and is ignored for a plain message); `Err` fails the delivery as any handler's would,
    /// and a final failure answers the request with it.
    pub fn respond<F>(&self, pattern: &str, handler: F) -> Result<Subscription<P>>
    where
        F: Fn(&Message<P>) -> std::result::Result<P, HandlerError> + 'static,
    {
        self.respond_with(pattern, handler, SubscribeOptions::default())
    }

    /// [`Bus::respond`] with `options` (a `group` makes a load-balanced service: one member
    /// answers each request).
    pub fn respond_with<F>(
        &self,
        pattern: &str,
        handler: F,
        options: SubscribeOptions,
    ) -> Result<Subscription<P>>
    where
        F: Fn(&Message<P>) -> std::result::Result<P, HandlerError> + 'static,
    {
        no_batch(
            &options,
            "is not available to a responder: each request is answered on its own",
        )?;
        self.add(pattern, Handler::Respond(Rc::new(handler)), options)
    }

    /// Subscribes an asynchronous responder: its future's `Ok` is the reply.
    pub fn respond_async<F, Fut>(
        &self,
        pattern: &str,
        handler: F,
        options: SubscribeOptions,
    ) -> Result<Subscription<P>>
    where
        F: Fn(Message<P>) -> Fut + 'static,
        Fut: Future<Output = std::result::Result<P, HandlerError>> + 'static,
    {
        no_batch(
            &options,
            "is not available to a responder: each request is answered on its own",
        )?;
        let f: RespondAsyncFn<P> = Rc::new(move |m| handler(m).boxed_local());
        self.add(pattern, Handler::RespondAsync(f), options)
    }

    /// Publishes `payload` on `topic` as a request and waits for the first reply.
    ///
    /// Fails with `NO_RESPONDERS` at once when no responder matches, `TIMEOUT` when no reply
    /// came within the timeout, `HANDLER_FAILED` (or `HANDLER_TIMEOUT`) with the responder's
    /// error when every responder failed, `CLOSED` when the bus closed first, and with the
    /// publish's own errors (`INVALID_TOPIC`, `QUEUE_FULL`…). Natively (and on a virtual clock)
    /// waiting runs the bus, as [`Bus::run_until_idle`] does; dropping the future gives the
    /// request up.
    pub async fn request(&self, topic: &str, payload: P, options: RequestOptions) -> Result<P> {
        self.start_request(topic, payload, options)?.reply().await
    }

    /// Publishes `payload` on `topic` as a request and gathers replies from every responder it
    /// reaches: until each has answered, `max` replies came, or the timeout passed (which ends
    /// the gathering without an error). Fails as [`Bus::request`] does for `NO_RESPONDERS`, the
    /// publish's errors and `CLOSED`.
    pub async fn request_many(
        &self,
        topic: &str,
        payload: P,
        options: RequestOptions,
    ) -> Result<Vec<P>> {
        self.start_request_many(topic, payload, options)?
            .replies()
            .await
    }

    /// Publishes a request for one reply and returns at once (after the synchronous responders
    /// it reached ran): the [`Request`] tells how it stands, or waits for it. Fails at once as
    /// [`Bus::request`] does for `NO_RESPONDERS`, options and the publish's errors.
    pub fn start_request(
        &self,
        topic: &str,
        payload: P,
        options: RequestOptions,
    ) -> Result<Request<P>> {
        self.open_request(topic, payload, 1, &options)
    }

    /// [`Bus::start_request`] gathering replies as [`Bus::request_many`] does.
    pub fn start_request_many(
        &self,
        topic: &str,
        payload: P,
        options: RequestOptions,
    ) -> Result<Request<P>> {
        let max = options.max.unwrap_or(crate::broker::MAX_REPLIES);
        self.open_request(topic, payload, max, &options)
    }

    fn open_request(
        &self,
        topic: &str,
        payload: P,
        max: u32,
        options: &RequestOptions,
    ) -> Result<Request<P>> {
        let timeout = match options.timeout {
            Some(t) if t.is_zero() => {
                return Err(Error::invalid_option("timeout", "must be positive"))
            }
            t => t,
        };
        let out = outgoing(
            payload,
            PublishOptions {
                key: options.key.clone(),
                headers: options.headers.clone(),
                ..PublishOptions::default()
            },
        )?;
        let inner = &*self.inner;
        let now = inner.clock.now();
        let deadline =
            timeout.map(|t| now.saturating_add(t.as_micros().min(u64::MAX as u128) as u64));
        let id = {
            let mut core = inner.core();
            let handle = core.resolve(topic)?;
            let id = core.open_request(handle, max, deadline)?;
            let published = core.publish_to(
                handle,
                Outgoing {
                    request: Some(id),
                    ..out
                },
                now,
                PublishMode::Now,
            );
            if let Err(e) = published {
                core.cancel_request(id);
                return Err(e);
            }
            id
        };
        let b = Rc::new(RefCell::new(ReplyBox {
            replies: Vec::new(),
            end: None,
            failure: None,
            one: max == 1,
            timeout,
            waker: None,
        }));
        inner.requests.borrow_mut().insert(id, b.clone());
        let pending = Pending {
            inner: Rc::downgrade(&self.inner),
            id,
        };
        self.pump();
        Ok(Request {
            bus: self.clone(),
            _pending: pending,
            b,
        })
    }

    /// Runs the bus (natively and on a virtual clock) until the request's box ended.
    async fn wait_ended(&self, b: &SharedBox<P>) {
        #[cfg(target_arch = "wasm32")]
        if self.inner.browser.is_some() {
            self.pump();
            Ended(b.clone()).await;
            return;
        }
        while b.borrow().end.is_none() {
            if self.step(true) {
                continue;
            }
            // Nothing runs or waits: only the request's deadline (or another timer) is left.
            if !self.wait_for_deadline() {
                let what = "no answer can come: every running handler waits on something the \
                            bus cannot advance, and nothing is queued";
                b.borrow_mut()
                    .finish(Err(Error::new(ErrorCode::Timeout, what)));
                return;
            }
            self.pump();
        }
    }

    /// Responder `sub` replied `value` to `request`.
    pub(super) fn replied(&self, request: RequestId, sub: SubId, value: P) {
        self.answered(request, sub, AnswerKind::Reply, Some(value), None);
    }

    /// Subscription `sub` completed a delivery of `request`'s message without a reply.
    pub(super) fn declined(&self, request: RequestId, sub: SubId) {
        self.answered(request, sub, AnswerKind::Decline, None, None);
    }

    /// Responder `sub` failed for good on the request its message carries: the answer a final
    /// failure gives.
    pub(super) fn failed_request(&self, request: RequestId, sub: SubId, code: ErrorCode, e: &str) {
        let error = Error::new(code, format!("the responder failed: {e}"));
        self.answered(request, sub, AnswerKind::Failure, None, Some(error));
    }

    /// Hands `sub`'s answer to the core, and what the core made of it to the requester.
    fn answered(
        &self,
        request: RequestId,
        sub: SubId,
        kind: AnswerKind,
        value: Option<P>,
        failure: Option<Error>,
    ) {
        let answer = self.inner.core().answer(request, sub, kind);
        let last = match answer {
            Answer::Late => return,
            Answer::Reply { last }
            | Answer::Failed { last, .. }
            | Answer::Declined { last, .. } => last,
        };
        let b = self.inner.requests.borrow().get(&request).cloned();
        if let Some(b) = b {
            let mut b = b.borrow_mut();
            if let Some(v) = value {
                b.replies.push(v);
            }
            if let Some(e) = failure {
                b.failure = Some(e);
            }
            if last {
                let end = match (b.one && b.replies.is_empty(), &b.failure) {
                    (false, _) => Ok(()),
                    (true, Some(e)) => Err(e.clone()),
                    (true, None) => Err(Error::new(
                        ErrorCode::NoResponders,
                        "every subscription the request reached completed without a reply",
                    )),
                };
                b.finish(end);
            }
        }
        if last {
            self.inner.requests.borrow_mut().remove(&request);
        }
    }

    /// The core ended `request` at its deadline or at the close.
    pub(super) fn request_ended(&self, request: RequestId, end: RequestEnd) {
        let Some(b) = self.inner.requests.borrow_mut().remove(&request) else {
            return;
        };
        let mut b = b.borrow_mut();
        let result = match end {
            RequestEnd::Closed => Err(Error::closed("bus")),
            RequestEnd::TimedOut if b.one => {
                let ms = b.timeout.map_or(0, |t| t.as_millis());
                let cause = match &b.failure {
                    Some(f) => format!(" ({})", f.message()),
                    None => String::new(),
                };
                Err(Error::new(
                    ErrorCode::Timeout,
                    format!("no reply within {ms} ms{cause}"),
                ))
            }
            RequestEnd::TimedOut => Ok(()),
        };
        b.finish(result);
    }
}
