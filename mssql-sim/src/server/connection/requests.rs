//! The request loop of a logged-in session: each SQL batch, RPC or attention read, run on
//! the engine and answered as TDS packets streamed through a [`Responder`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::wait::{Signals, Work, drive_work, run};
use crate::error::{SimError, SqlError};
use crate::faults::Control;
use crate::server::shared::Shared;
use crate::sql::exec::Exec;
use crate::sql::out::{Env, Out};
use crate::sql::session::Session;
use crate::tds::packet::{Message, frame, ty};
use crate::tds::prepared::Plan;
use crate::tds::rpc;
use crate::tds::tokens::{self, DoneKind, done};

/// Writes a response as TDS packets, flushing full packets as the buffer fills so large
/// results stream instead of piling up.
pub(super) struct Responder<'w, W> {
    w: &'w mut W,
    packet_size: usize,
    buf: Vec<u8>,
    packet_id: u8,
    attention: Arc<AtomicBool>,
}

impl<W: AsyncWrite + Unpin> Responder<'_, W> {
    async fn maybe_flush(&mut self) -> Result<(), SimError> {
        let body = self.packet_size - 8;
        if self.buf.len() >= body * 16 {
            let full = self.buf.len() / body * body;
            let mut out = Vec::with_capacity(full + full / body * 8 + 8);
            frame(
                &mut out,
                ty::REPLY,
                &self.buf[..full],
                self.packet_size,
                false,
                &mut self.packet_id,
            );
            self.buf.drain(..full);
            self.w.write_all(&out).await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), SimError> {
        let mut out = Vec::with_capacity(self.buf.len() + 64);
        frame(
            &mut out,
            ty::REPLY,
            &self.buf,
            self.packet_size,
            true,
            &mut self.packet_id,
        );
        self.buf.clear();
        self.w.write_all(&out).await?;
        self.w.flush().await?;
        Ok(())
    }

    fn attention(&self) -> bool {
        self.attention.swap(false, Ordering::SeqCst)
    }
}

pub(super) enum Flow {
    Continue,
    Close,
}

/// Streams the outputs of one request. `rpc` wraps them the way a procedure call is answered.
/// `handle` is an `sp_prepexec` handle, returned as the OUTPUT value of parameter 0.
pub(super) async fn respond<W: AsyncWrite + Unpin>(
    r: &mut Responder<'_, W>,
    outs: Vec<Out>,
    rpc: bool,
    handle: Option<i32>,
    ctl: &Control,
) -> Result<Flow, SimError> {
    if let Some(d) = ctl.delay() {
        tokio::time::sleep(d).await;
    }
    let last_done = outs.iter().rposition(|o| matches!(o, Out::Done { .. }));
    let mut errored = false;
    let mut close_after: Option<u64> = None;
    for (i, o) in outs.into_iter().enumerate() {
        match o {
            Out::Rows(rs) => {
                tokens::col_metadata(&mut r.buf, &rs.cols);
                if close_after.is_none() {
                    close_after = ctl.take_close_after_rows();
                }
                for (n, row) in rs.rows.iter().enumerate() {
                    if close_after == Some(n as u64) {
                        // Simulated network failure mid-result: what was written so far goes
                        // out, then the socket closes without a DONE.
                        let body = r.packet_size - 8;
                        let full = r.buf.len() / body * body;
                        let mut out = Vec::new();
                        frame(
                            &mut out,
                            ty::REPLY,
                            &r.buf[..full],
                            r.packet_size,
                            false,
                            &mut r.packet_id,
                        );
                        r.w.write_all(&out).await?;
                        r.w.flush().await?;
                        return Ok(Flow::Close);
                    }
                    let res = if tokens::prefer_nbc(row) {
                        tokens::nbc_row(&mut r.buf, &rs.cols, row)
                    } else {
                        tokens::row(&mut r.buf, &rs.cols, row)
                    };
                    if let Err(e) = res {
                        tokens::error(&mut r.buf, &e);
                        errored = true;
                        break;
                    }
                    // Flush and look for ATTENTION only now and then: both cost more
                    // than encoding a row.
                    if r.buf.len() >= r.packet_size * 16 {
                        r.maybe_flush().await?;
                    }
                    if n % 128 == 127 && r.attention() {
                        tokens::done(&mut r.buf, DoneKind::Done, done::ATTN, 0);
                        r.finish().await?;
                        return Ok(Flow::Continue);
                    }
                }
            }
            Out::Done { count, error } => {
                let mut status = if count.is_some() { done::COUNT } else { 0 };
                if error || errored {
                    status |= done::ERROR;
                    errored = false;
                }
                let kind = if rpc {
                    DoneKind::InProc
                } else {
                    DoneKind::Done
                };
                if rpc || Some(i) != last_done {
                    status |= done::MORE;
                }
                tokens::done(&mut r.buf, kind, status, count.unwrap_or(0));
            }
            Out::Error(e) => tokens::error(&mut r.buf, &e),
            Out::Info(n, text) => tokens::info(&mut r.buf, n, &text),
            Out::Env(Env::Database { new, old }) => tokens::env_string(&mut r.buf, 1, &new, &old),
            Out::Env(Env::Begin(d)) => tokens::env_transaction(&mut r.buf, 8, d),
            Out::Env(Env::Commit(d)) => tokens::env_transaction(&mut r.buf, 9, d),
            Out::Env(Env::Rollback(d)) => tokens::env_transaction(&mut r.buf, 10, d),
        }
        r.maybe_flush().await?;
    }
    if rpc {
        tokens::return_status(&mut r.buf, 0);
        if let Some(h) = handle {
            tokens::return_int(&mut r.buf, 0, "", h);
        }
        tokens::done(&mut r.buf, DoneKind::Proc, done::FINAL, 0);
    } else if last_done.is_none() {
        tokens::done(&mut r.buf, DoneKind::Done, done::FINAL, 0);
    }
    if r.attention() {
        tokens::done(&mut r.buf, DoneKind::Done, done::ATTN, 0);
    }
    r.finish().await?;
    Ok(Flow::Continue)
}

pub(super) async fn serve<W: AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    sess: &mut Session,
    wr: &mut W,
    rx: &mut mpsc::Receiver<Message>,
    signals: &Signals,
    packet_size: usize,
    generation: u64,
) -> Result<(), SimError> {
    loop {
        if shared.ctl.restart_gen() != generation {
            return Ok(());
        }
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = shared.ctl.restarted() => return Ok(()),
        };
        let Some(msg) = msg else { return Ok(()) };
        let mut r = Responder {
            w: wr,
            packet_size,
            buf: Vec::new(),
            packet_id: 1,
            attention: signals.attention.clone(),
        };
        let flow = match msg.ty {
            ty::ATTENTION => {
                if r.attention() {
                    tokens::done(&mut r.buf, DoneKind::Done, done::ATTN, 0);
                    r.finish().await?;
                }
                Flow::Continue
            }
            ty::SQL_BATCH => {
                let sql = rpc::parse_batch(&msg.payload)?;
                shared.ctl.record(|| sql.clone());
                sess.vars.clear(); // variables live for one batch, as in T-SQL
                let mut work = Work::Statements(Default::default());
                let mut outs = run(shared, sess, |ex| {
                    // Table variables are taken apart first (sql/table_vars.rs).
                    work = match ex.table_var_batch(&sql) {
                        Some(batch) => Work::TableVars(batch),
                        None => Work::Statements(ex.parse_segments(&sql)),
                    }
                });
                match drive_work(shared, sess, work, signals, generation).await {
                    Some(more) => outs.extend(more),
                    None => return Ok(()),
                }
                respond(&mut r, outs, false, None, &shared.ctl).await?
            }
            ty::TRANSACTION_MANAGER => {
                let outs = run(shared, sess, |ex| ex.run_tm(&msg.payload));
                respond(&mut r, outs, false, None, &shared.ctl).await?
            }
            ty::RPC => {
                let req = rpc::parse(&msg.payload)?;
                shared.ctl.record(|| {
                    let texts: Vec<String> = req
                        .params
                        .iter()
                        .filter_map(|p| p.value.to_text())
                        .collect();
                    format!("EXEC {} {}", req.proc_name, texts.join(" "))
                });
                sess.vars.clear();
                let (segs, mut outs, handle) = match sess.prepared.plan(req) {
                    Plan::Forward(req) => {
                        let mut segs = Default::default();
                        let outs = run(shared, sess, |ex| segs = ex.rpc_segments(req));
                        (Some(Work::Statements(segs)), outs, None)
                    }
                    Plan::Execute { req, handle } => {
                        let mut segs = None;
                        let outs = run(shared, sess, |ex| segs = execute_rpc(ex, req));
                        (segs, outs, handle)
                    }
                    Plan::Nothing => (None, Vec::new(), None),
                    Plan::Fail(e) => (
                        None,
                        vec![
                            Out::Error(e),
                            Out::Done {
                                count: None,
                                error: true,
                            },
                        ],
                        None,
                    ),
                };
                if let Some(work) = segs {
                    match drive_work(shared, sess, work, signals, generation).await {
                        Some(more) => outs.extend(more),
                        None => return Ok(()),
                    }
                }
                respond(&mut r, outs, true, handle, &shared.ctl).await?
            }
            other => {
                let e = SqlError::unsupported(format!("TDS packet type {other}"));
                let mut outs = Vec::new();
                outs.push(Out::Error(e));
                outs.push(Out::Done {
                    count: None,
                    error: true,
                });
                respond(&mut r, outs, false, None, &shared.ctl).await?
            }
        };
        if let Flow::Close = flow {
            return Ok(());
        }
    }
}

/// Runs an `sp_executesql` request: its values become the session's variables, then its
/// statement is returned for [`drive_work`] to run (taken apart first when it uses table
/// variables); other requests' statements come from [`Exec::rpc_segments`].
pub(super) fn execute_rpc(ex: &mut Exec<'_>, req: rpc::RpcRequest) -> Option<Work> {
    let stmt = req.params.first().and_then(|p| p.value.to_text());
    match stmt {
        Some(stmt) if stmt.to_lowercase().contains("table") => {
            for p in req.params.iter().skip(2) {
                let ty = p.ty.unwrap_or_else(|| p.value.natural_type());
                ex.sess
                    .vars
                    .insert(p.name.to_lowercase(), (ty, p.value.clone()));
            }
            Some(match ex.table_var_batch(&stmt) {
                Some(batch) => Work::TableVars(batch),
                None => Work::Statements(ex.parse_segments(&stmt)),
            })
        }
        _ => Some(Work::Statements(ex.rpc_segments(req))),
    }
}
