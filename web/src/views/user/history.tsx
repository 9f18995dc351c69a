// The transaction log, each entry's signed receipt verified here in the browser, disputes.
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from "jose";
import { useState } from "preact/hooks";
import { api } from "../../api";
import { Field, Notice, ProblemView, Section } from "../../components";
import { formatMoney } from "../../money";
import { useAction, useList, when } from "./shared";

type Entry = {
  id: string;
  type: string;
  direction: string;
  amount: number;
  currency: string;
  status: string;
  occurred_at: string;
  payment_id: string;
  hash: string;
  [field: string]: unknown;
};
type Dispute = { id: string; status: string; reason: string; amount: number; currency: string; created_at: string; transaction_id: string };

/** JSON as Python's `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
 * writes it: the form the log hashes (cashew/ledger/chain.py). */
function canonical(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  const object = value as Record<string, unknown>;
  return `{${Object.keys(object)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${canonical(object[key])}`)
    .join(",")}}`;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The receipt's signature checked with the published keys (EdDSA, its typ), and the entry's
 * hash recomputed from the entry shown: only both together say the log holds this entry. */
export async function verifyReceipt(receipt: string, entry: Entry): Promise<string | null> {
  const jwks = (await api<JSONWebKeySet>("GET", "/.well-known/jwks.json", { auth: false })).body;
  // Only the receipt keys (kid `receipt.…`): an access-token key never vouches for a receipt
  const receiptKeys = { keys: jwks.keys.filter((key) => key.kid?.startsWith("receipt.")) };
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(receipt, createLocalJWKSet(receiptKeys), {
      algorithms: ["EdDSA"],
      typ: "cashew-receipt+jwt",
    }));
  } catch (error) {
    return `the signature does not verify (${(error as Error).message})`;
  }
  const { hash, ...rest } = entry;
  const recomputed = await sha256Hex(canonical(rest));
  if (recomputed !== hash) return "the entry's hash is not what its fields give";
  if (payload.hash !== hash || payload.entry_id !== entry.id) return "the receipt is for another entry";
  for (const field of ["amount", "currency", "direction", "type", "status"] as const)
    if (payload[field] !== entry[field]) return `the receipt's ${field} differs from the entry's`;
  return null;
}

function EntryRow({ entry }: { entry: Entry }) {
  const [open, setOpen] = useState<"receipt" | "dispute" | null>(null);
  const [verdict, setVerdict] = useState<string | null>(null);
  const [reason, setReason] = useState("");
  const [details, setDetails] = useState("");
  const [dispute, setDispute] = useState<Dispute | null>(null);
  const { busy, error, run } = useAction();
  const showReceipt = () => {
    setOpen("receipt");
    void run(async () => {
      const { body } = await api<{ receipt: string; entry: Entry }>("GET", `/v1/transactions/${encodeURIComponent(entry.id)}/receipt`);
      const problem = await verifyReceipt(body.receipt, body.entry);
      setVerdict(problem ? `Not verified: ${problem}` : "Verified: signed by Cashew, and the log holds this entry");
    });
  };
  const openDispute = (event: Event) => {
    event.preventDefault();
    void run(async () => {
      const { body } = await api<Dispute>("POST", `/v1/transactions/${encodeURIComponent(entry.id)}/disputes`, {
        body: { reason, details: details || undefined },
      });
      setDispute(body);
    });
  };
  return (
    <>
      <tr>
        <td>{when(entry.occurred_at)}</td>
        <td>{entry.type}</td>
        <td>{entry.status}</td>
        <td class="amount">{entry.direction === "debit" ? "−" : "+"}{formatMoney(entry.amount, entry.currency)}</td>
        <td>
          <button type="button" class="secondary" onClick={showReceipt} aria-label={`Receipt of ${entry.id}`}>Receipt</button>{" "}
          {entry.type === "payment" && entry.direction === "debit" && (
            <button type="button" class="secondary" onClick={() => setOpen("dispute")} aria-label={`Dispute ${entry.id}`}>Dispute</button>
          )}
        </td>
      </tr>
      {open && (
        <tr>
          <td colSpan={5}>
            <ProblemView error={error} />
            {open === "receipt" && (busy ? <p>Verifying…</p> : verdict && <p role="status" data-testid="receipt-verdict">{verdict}</p>)}
            {open === "dispute" &&
              (dispute ? (
                <Notice>Dispute {dispute.id} opened ({dispute.status}).</Notice>
              ) : (
                <form onSubmit={openDispute}>
                  <div class="field">
                    <label for={`reason-${entry.id}`}>Reason</label>
                    <select id={`reason-${entry.id}`} value={reason} required onInput={(e) => setReason((e.target as HTMLSelectElement).value)}>
                      <option value="">Choose…</option>
                      <option value="fraudulent">Fraudulent</option>
                      <option value="duplicate">Duplicate</option>
                      <option value="product_not_received">Product not received</option>
                      <option value="other">Other</option>
                    </select>
                  </div>
                  <Field label="Details" name={`details-${entry.id}`} value={details} onInput={setDetails} />
                  <button type="submit" disabled={busy}>Open dispute</button>
                </form>
              ))}
          </td>
        </tr>
      )}
    </>
  );
}

export function History() {
  const list = useList<Entry>("/v1/transactions");
  return (
    <Section title="History">
      <ProblemView error={list.error} />
      {list.loaded && list.items.length === 0 && <p>Nothing yet.</p>}
      <table>
        <thead><tr><th>When</th><th>Type</th><th>Status</th><th class="amount">Amount</th><th>Actions</th></tr></thead>
        <tbody>{list.items.map((entry) => <EntryRow key={entry.id} entry={entry} />)}</tbody>
      </table>
      {list.more && <button type="button" class="secondary" onClick={list.more}>More</button>}
    </Section>
  );
}

export function Disputes() {
  const list = useList<Dispute>("/v1/disputes");
  return (
    <Section title="My disputes">
      <ProblemView error={list.error} />
      {list.loaded && list.items.length === 0 && <p>No disputes.</p>}
      <table>
        <thead><tr><th>Opened</th><th>Reason</th><th>Status</th><th class="amount">Amount</th></tr></thead>
        <tbody>
          {list.items.map((d) => (
            <tr key={d.id}><td>{when(d.created_at)}</td><td>{d.reason}</td><td>{d.status}</td><td class="amount">{formatMoney(d.amount, d.currency)}</td></tr>
          ))}
        </tbody>
      </table>
      {list.more && <button type="button" class="secondary" onClick={list.more}>More</button>}
    </Section>
  );
}
