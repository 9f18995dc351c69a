// The admin's pages: disputes, reports (a chart and the CSV), the audit, webhook endpoints.
import { useEffect, useState } from "preact/hooks";
import { api, apiBase, tokens } from "../../api";
import { Field, Notice, ProblemView, Section } from "../../components";
import { formatMoney } from "../../money";
import { useAction, useList, when } from "../user/shared";

type Dispute = { id: string; status: string; reason: string; amount: number; currency: string; created_at: string; payer_id: string; details: string | null };
type Group = { type: string; status: string; currency: string; count: number; amount: number };
type Summary = { since: string; until: string; outcomes: number; open_disputes: number; groups: Group[] };
type Audit = { chains: number; entries: number; chains_valid: boolean; balances_match: boolean; card_money_explained: boolean; discrepancies: unknown[]; pending: unknown[] };
type Job = { id: string; type: string; status: string; progress: number; rows: number | null; download_url: string | null; error: string | null };
type Endpoint = { id: string; url: string; events: string[]; status: string; description: string | null; created_at: string };

export function AdminDisputes() {
  const [status, setStatus] = useState("open");
  const list = useList<Dispute>("/v1/admin/disputes", status ? { status } : {});
  const { busy, error, run } = useAction();
  const resolve = (id: string, outcome: "won" | "lost") =>
    void run(async () => {
      await api("POST", `/v1/admin/disputes/${encodeURIComponent(id)}/resolve`, { body: { outcome } });
      await list.reload();
    });
  return (
    <Section title="Disputes">
      <div class="field">
        <label for="dispute-status">Status</label>
        <select id="dispute-status" value={status} onInput={(e) => setStatus((e.target as HTMLSelectElement).value)}>
          <option value="open">Open</option>
          <option value="won">Won</option>
          <option value="lost">Lost</option>
          <option value="">All</option>
        </select>
      </div>
      <ProblemView error={list.error ?? error} />
      <table>
        <thead><tr><th>Opened</th><th>Payer</th><th>Reason</th><th>Status</th><th class="amount">Amount</th><th>Resolve</th></tr></thead>
        <tbody>
          {list.items.map((d) => (
            <tr key={d.id}>
              <td>{when(d.created_at)}</td><td><code>{d.payer_id}</code></td><td>{d.reason}</td><td>{d.status}</td>
              <td class="amount">{formatMoney(d.amount, d.currency)}</td>
              <td>
                {d.status === "open" && (
                  <>
                    <button type="button" disabled={busy} onClick={() => resolve(d.id, "won")} aria-label={`Refund the payer of ${d.id} (won)`}>Won</button>{" "}
                    <button type="button" class="secondary" disabled={busy} onClick={() => resolve(d.id, "lost")} aria-label={`Reject ${d.id} (lost)`}>Lost</button>
                  </>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {list.loaded && list.items.length === 0 && <p>No disputes.</p>}
      {list.more && <button type="button" class="secondary" onClick={list.more}>More</button>}
    </Section>
  );
}

/** Bars of each group's count, drawn as SVG, with the numbers as a table beside them. */
function Chart({ groups }: { groups: Group[] }) {
  const top = Math.max(1, ...groups.map((g) => g.count));
  const row = 26;
  return (
    <svg role="img" aria-label="Outcomes per type, status and currency" width="640" height={groups.length * row + 10} data-testid="report-chart">
      {groups.map((g, i) => (
        <g key={`${g.type}-${g.status}-${g.currency}`} transform={`translate(0 ${i * row + 5})`}>
          <text x="0" y="15" font-size="13" fill="#1a1a1a">{`${g.type} ${g.status} ${g.currency}`}</text>
          <rect x="230" y="2" height="18" width={(g.count / top) * 330} fill="#0b5394" />
          <text x={236 + (g.count / top) * 330} y="15" font-size="13" fill="#1a1a1a">{g.count}</text>
        </g>
      ))}
    </svg>
  );
}

/**
 * A job of the whole range or log, run in the background (POST /v1/admin/jobs), followed
 * once a second until it is done; then its file's link (valid 15 minutes).
 */
function BackgroundJob({ type, label, file }: { type: "transactions_csv" | "audit"; label: string; file: string }) {
  const [job, setJob] = useState<Job | null>(null);
  const { busy, error, run } = useAction();
  const active = job !== null && (job.status === "queued" || job.status === "running");
  useEffect(() => {
    if (!active || job === null) return;
    const timer = setTimeout(() => void run(async () => setJob((await api<Job>("GET", `/v1/admin/jobs/${encodeURIComponent(job.id)}`)).body)), 1000);
    return () => clearTimeout(timer);
  }, [job]);
  return (
    <div class="field" data-testid={`job-${type}`}>
      <button type="button" class="secondary" disabled={busy || active} onClick={() => void run(async () => setJob((await api<Job>("POST", "/v1/admin/jobs", { body: { type } })).body))}>{label}</button>
      {job && (
        <>
          <label for={`job-${type}-progress`}>{`${label}: ${job.status}`}</label>
          <progress id={`job-${type}-progress`} max={100} value={job.progress} />
          <small>{job.progress} %{job.rows !== null ? ` · ${job.rows} rows` : ""}</small>
          {job.download_url && <p><a href={job.download_url} download={file}>{`Download ${file}`}</a> (the link is valid 15 minutes)</p>}
          {job.error && <p role="alert">{job.error}</p>}
        </>
      )}
      <ProblemView error={error} />
    </div>
  );
}

export function AdminReports() {
  const [summary, setSummary] = useState<Summary | null>(null);
  const [progress, setProgress] = useState<{ bytes: number; total: number | null } | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const { busy, error, run } = useAction();
  const load = () => void run(async () => setSummary((await api<Summary>("GET", "/v1/admin/reports/summary")).body));
  const download = () =>
    void run(async () => {
      setSaved(null);
      // A raw fetch: the CSV is streamed, counted as it arrives, then saved from a Blob
      const response = await fetch(`${apiBase()}/v1/admin/reports/transactions.csv?limit=1000`, {
        headers: { Authorization: `Bearer ${tokens()?.access_token ?? ""}` },
      });
      if (!response.ok || !response.body) throw new Error(`the report failed (${response.status})`);
      const total = Number(response.headers.get("Content-Length")) || null;
      const reader = response.body.getReader();
      const chunks: Uint8Array[] = [];
      let bytes = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        bytes += value.length;
        setProgress({ bytes, total });
      }
      const url = URL.createObjectURL(new Blob(chunks as BlobPart[], { type: "text/csv" }));
      const link = document.createElement("a");
      link.href = url;
      link.download = "transactions.csv";
      link.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setSaved(`Saved transactions.csv (${bytes} bytes).`);
    });
  return (
    <Section title="Reports">
      <button type="button" onClick={load} disabled={busy}>Show the summary</button>{" "}
      <button type="button" class="secondary" onClick={download} disabled={busy}>Download the CSV</button>
      {progress && (
        <div class="field">
          <label for="csv-progress">CSV download</label>
          <progress id="csv-progress" max={progress.total ?? undefined} value={progress.total ? progress.bytes : undefined} />
          <small>{progress.bytes} bytes</small>
        </div>
      )}
      {saved && <Notice>{saved}</Notice>}
      <ProblemView error={error} />
      <BackgroundJob type="transactions_csv" label="Export the last 30 days in the background" file="transactions.csv" />
      {summary && (
        <>
          <p>{summary.outcomes} outcomes from {when(summary.since)} to {when(summary.until)} · {summary.open_disputes} open disputes</p>
          <Chart groups={summary.groups} />
          <table>
            <thead><tr><th>Type</th><th>Status</th><th>Currency</th><th class="amount">Count</th><th class="amount">Amount</th></tr></thead>
            <tbody>
              {summary.groups.map((g) => (
                <tr key={`${g.type}-${g.status}-${g.currency}`}><td>{g.type}</td><td>{g.status}</td><td>{g.currency}</td><td class="amount">{g.count}</td><td class="amount">{formatMoney(g.amount, g.currency)}</td></tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Section>
  );
}

export function AdminAudit() {
  const [audit, setAudit] = useState<Audit | null>(null);
  const { busy, error, run } = useAction();
  const check = (label: string, ok: boolean) => <li>{ok ? "✔ pass" : "✘ FAIL"}: {label}</li>;
  return (
    <Section title="Audit">
      <button type="button" disabled={busy} onClick={() => void run(async () => setAudit((await api<Audit>("GET", "/v1/admin/audit/verify")).body))}>Run the audit</button>
      <ProblemView error={error} />
      {busy && <p role="status">Auditing every chain and balance…</p>}
      <BackgroundJob type="audit" label="Audit in the background" file="audit.json" />
      {audit && (
        <ul data-testid="audit-results">
          {check(`${audit.chains} chains, ${audit.entries} entries: every chain intact`, audit.chains_valid)}
          {check("every balance is what the log says", audit.balances_match)}
          {check("all card money is explained", audit.card_money_explained)}
          {check(`${audit.discrepancies.length} discrepancies`, audit.discrepancies.length === 0)}
          <li>{audit.pending.length} outcomes still pending</li>
        </ul>
      )}
    </Section>
  );
}

const EVENTS = ["payment.succeeded", "payment.failed", "payment.captured", "payment.canceled", "refund.succeeded", "dispute.opened", "dispute.won", "dispute.lost", "payout.paid", "payout.failed"];

export function AdminWebhooks() {
  const list = useList<Endpoint>("/v1/admin/webhook-endpoints");
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState<string[]>(["payment.succeeded"]);
  const [secret, setSecret] = useState<string | null>(null);
  const { busy, error, run } = useAction();
  const create = (event: Event) => {
    event.preventDefault();
    void run(async () => {
      const { body } = await api<Endpoint & { secret: string }>("POST", "/v1/admin/webhook-endpoints", { body: { url, events } });
      setSecret(body.secret);
      setUrl("");
      await list.reload();
    });
  };
  const remove = (id: string) =>
    void run(async () => {
      await api("DELETE", `/v1/admin/webhook-endpoints/${encodeURIComponent(id)}`);
      await list.reload();
    });
  return (
    <Section title="Webhook endpoints">
      <ProblemView error={list.error ?? error} />
      <table>
        <thead><tr><th>URL</th><th>Events</th><th>Status</th><th>Action</th></tr></thead>
        <tbody>
          {list.items.map((e) => (
            <tr key={e.id}><td>{e.url}</td><td>{e.events.join(", ")}</td><td>{e.status}</td>
              <td><button type="button" class="secondary" onClick={() => remove(e.id)} aria-label={`Delete ${e.url}`}>Delete</button></td></tr>
          ))}
        </tbody>
      </table>
      <h3>Add an endpoint</h3>
      <form onSubmit={create}>
        <Field label="URL" name="url" type="url" value={url} onInput={setUrl} required hint="https:// and a public host." />
        <fieldset>
          <legend>Events</legend>
          {EVENTS.map((name) => (
            <label key={name} class="check">
              <input type="checkbox" checked={events.includes(name)} onInput={(e) => setEvents((old) => ((e.target as HTMLInputElement).checked ? [...old, name] : old.filter((x) => x !== name)))} /> {name}
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={busy || events.length === 0}>Add endpoint</button>
      </form>
      {secret && (
        <div role="status">
          <p><strong>Its signing secret, shown once:</strong></p>
          <p><code data-testid="webhook-secret">{secret}</code></p>
        </div>
      )}
    </Section>
  );
}
