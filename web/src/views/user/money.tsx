// Balances, cards, top-ups, payments to another user, payouts: every amount typed as text and
// parsed to minor units per currency; every money-moving POST under the intent's key.
import { useEffect, useState } from "preact/hooks";
import { api, apiBase, claims, ApiError } from "../../api";
import { Field, Notice, ProblemView, Section } from "../../components";
import { CURRENCIES, formatMoney, parseMoney } from "../../money";
import { useAction, useIntent, useList, when } from "./shared";

type Balance = { currency: string; available: number };
type Card = { brand: string; last4: string; exp_month: number; exp_year: number };
type Method = { id: string; card: Card; default: boolean; status: string; created_at: string };
type Payment = {
  id: string;
  status: string;
  amount: number;
  currency: string;
  type: string;
  failure_message: string | null;
  next_action: { type: string; url: string } | null;
};
type Payout = { id: string; status: string; amount: number; currency: string; created_at: string; failure_message: string | null };

export function Home() {
  const [balances, setBalances] = useState<Balance[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<{ data: Balance[] }>("GET", "/v1/users/me/balances")
      .then(({ body }) => setBalances(body.data))
      .catch(setError);
  }, []);
  return (
    <Section title="Balances">
      <ProblemView error={error} />
      {balances && balances.length === 0 && <p>No money yet: <a href="#/top-up">top up</a>.</p>}
      {balances && balances.length > 0 && (
        <table>
          <thead><tr><th>Currency</th><th class="amount">Available</th></tr></thead>
          <tbody>
            {balances.map((b) => (
              <tr key={b.currency}>
                <td>{b.currency}</td>
                <td class="amount" data-testid={`balance-${b.currency}`}>{formatMoney(b.available, b.currency)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p>
        Your user id, for others to pay you: <code data-testid="my-user-id">{String(claims()?.sub ?? "")}</code>
      </p>
    </Section>
  );
}

function CurrencySelect({ value, onInput }: { value: string; onInput: (value: string) => void }) {
  return (
    <div class="field">
      <label for="field-currency">Currency</label>
      <select id="field-currency" name="currency" value={value} onInput={(e) => onInput((e.target as HTMLSelectElement).value)}>
        {CURRENCIES.map((c) => <option key={c} value={c}>{c}</option>)}
      </select>
    </div>
  );
}

function MethodSelect({ value, onInput }: { value: string; onInput: (value: string) => void }) {
  const { items } = useList<Method>("/v1/users/me/payment-methods");
  useEffect(() => {
    if (!value && items.length) onInput((items.find((m) => m.default) ?? items[0]).id);
  }, [items]);
  return (
    <div class="field">
      <label for="field-method">Card</label>
      <select id="field-method" name="payment_method_id" value={value} onInput={(e) => onInput((e.target as HTMLSelectElement).value)}>
        {items.map((m) => (
          <option key={m.id} value={m.id}>
            {m.card.brand} •••• {m.card.last4}{m.default ? " (default)" : ""}
          </option>
        ))}
      </select>
      {items.length === 0 && <small><a href="#/cards">Add a card</a> first.</small>}
    </div>
  );
}

export function Cards() {
  const list = useList<Method>("/v1/users/me/payment-methods");
  const [number, setNumber] = useState("");
  const [expiry, setExpiry] = useState("");
  const [cvc, setCvc] = useState("");
  const [added, setAdded] = useState<string | null>(null);
  const { busy, error, run } = useAction();
  const add = (event: Event) => {
    event.preventDefault();
    const [month, year] = expiry.split("/").map((part) => Number(part.trim()));
    void run(async () => {
      // The card goes to the gateway's tokenisation endpoint (the sandbox's, standing for
      // Stripe.js); Cashew gets only the token.
      const response = await fetch(`${apiBase()}/_sandbox/v1/tokens`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          card: { number: number.replace(/\s/g, ""), exp_month: month, exp_year: year < 100 ? 2000 + year : year, cvc },
        }),
      });
      const token = await response.json();
      if (!response.ok) throw new ApiError(token);
      const { body } = await api<Method>("POST", "/v1/users/me/payment-methods", { body: { gateway_token: token.id } });
      setAdded(`${body.card.brand} •••• ${body.card.last4}`);
      setNumber("");
      setExpiry("");
      setCvc("");
      await list.reload();
    });
  };
  const act = (method: string, id: string, body?: unknown) =>
    void run(async () => {
      await api(method, `/v1/users/me/payment-methods/${encodeURIComponent(id)}`, { body });
      await list.reload();
    });
  return (
    <Section title="Cards">
      <ProblemView error={list.error} />
      <ul class="cards">
        {list.items.map((m) => (
          <li key={m.id}>
            {m.card.brand} •••• {m.card.last4}, expires {m.card.exp_month}/{m.card.exp_year} · {m.status}
            {m.default ? " · default " : " "}
            {!m.default && <button type="button" class="secondary" onClick={() => act("PATCH", m.id, { default: true })}>Make default</button>}{" "}
            <button type="button" class="secondary" onClick={() => act("DELETE", m.id)} aria-label={`Remove card ending ${m.card.last4}`}>Remove</button>
          </li>
        ))}
      </ul>
      <h3>Add a card</h3>
      <form onSubmit={add}>
        <Field label="Card number" name="number" value={number} onInput={setNumber} required autocomplete="cc-number" inputMode="numeric" hint="Sandbox: 4242 4242 4242 4242 succeeds." />
        <Field label="Expiry (MM/YY)" name="expiry" value={expiry} onInput={setExpiry} required autocomplete="cc-exp" />
        <Field label="CVC" name="cvc" value={cvc} onInput={setCvc} required autocomplete="cc-csc" inputMode="numeric" />
        <ProblemView error={error} />
        {added && <Notice>Added {added}.</Notice>}
        <button type="submit" disabled={busy}>Add card</button>
      </form>
    </Section>
  );
}

function Outcome({ payment }: { payment: Payment | Payout | null }) {
  if (!payment) return null;
  const action = "next_action" in payment ? payment.next_action : null;
  const safe = action && /^https?:\/\//.test(action.url) ? action.url : null;
  return (
    <Notice>
      <span data-testid="outcome-status">{payment.status}</span>: {formatMoney(payment.amount, payment.currency)} ({payment.id})
      {payment.failure_message && <> · {payment.failure_message}</>}
      {safe && <> · <a href={safe}>Authenticate with your bank</a></>}
    </Notice>
  );
}

/** A money form: amount + currency (+ more), submitted once per intent. */
function useMoneyForm() {
  const intent = useIntent();
  const [amount, setAmountText] = useState("");
  const [currency, setCurrencyValue] = useState("USD");
  const action = useAction<unknown>();
  const edit = <T,>(set: (value: T) => void) => (value: T) => {
    set(value);
    intent.renew(); // another amount is another intent: a new key
  };
  const minor = parseMoney(amount, currency);
  /** After an outcome is shown: the amount cleared, so a late second click sends nothing
   * (one already queued has the old key, and gets the same payment back). */
  const done = () => {
    setAmountText("");
    intent.renew();
  };
  return { intent, amount, currency, minor, action, done, setAmount: edit(setAmountText), setCurrency: edit(setCurrencyValue), edit };
}

function AmountFields({ form }: { form: ReturnType<typeof useMoneyForm> }) {
  return (
    <>
      <Field label="Amount" name="amount" value={form.amount} onInput={form.setAmount} required inputMode="decimal" hint={form.amount && form.minor === null ? "Not an amount in this currency." : undefined} />
      <CurrencySelect value={form.currency} onInput={form.setCurrency} />
    </>
  );
}

export function TopUp() {
  const form = useMoneyForm();
  const [method, setMethod] = useState("");
  const [outcome, setOutcome] = useState<Payment | null>(null);
  const submit = (event: Event) => {
    event.preventDefault();
    if (form.minor === null) return;
    void form.action.run(async () => {
      const { body } = await api<Payment>("POST", "/v1/top-ups", {
        idempotencyKey: form.intent.key,
        body: { amount: form.minor, currency: form.currency, payment_method_id: method || undefined },
      });
      setOutcome(body);
      form.done();
    });
  };
  return (
    <Section title="Top up">
      <form onSubmit={submit}>
        <AmountFields form={form} />
        <MethodSelect value={method} onInput={form.edit(setMethod)} />
        <ProblemView error={form.action.error} />
        <Outcome payment={outcome} />
        <button type="submit" disabled={form.action.busy || form.minor === null}>Top up</button>
      </form>
    </Section>
  );
}

export function Pay() {
  const form = useMoneyForm();
  const [payee, setPayee] = useState("");
  const [description, setDescription] = useState("");
  const [outcome, setOutcome] = useState<Payment | null>(null);
  const submit = (event: Event) => {
    event.preventDefault();
    if (form.minor === null) return;
    void form.action.run(async () => {
      const { body } = await api<Payment>("POST", "/v1/payments", {
        idempotencyKey: form.intent.key,
        body: {
          amount: form.minor,
          currency: form.currency,
          payee_id: payee.trim(),
          source: { type: "balance" },
          description: description || undefined,
        },
      });
      setOutcome(body);
      form.done();
    });
  };
  return (
    <Section title="Pay someone">
      <form onSubmit={submit}>
        <Field label="Payee's user id" name="payee_id" value={payee} onInput={form.edit(setPayee)} required hint="They find it on their Balances page (usr_…)." />
        <AmountFields form={form} />
        <Field label="Description (optional)" name="description" value={description} onInput={form.edit(setDescription)} />
        <ProblemView error={form.action.error} />
        <Outcome payment={outcome} />
        <button type="submit" disabled={form.action.busy || form.minor === null}>Pay</button>
      </form>
    </Section>
  );
}

export function Payouts() {
  const form = useMoneyForm();
  const [method, setMethod] = useState("");
  const [outcome, setOutcome] = useState<Payout | null>(null);
  const list = useList<Payout>("/v1/payouts");
  const submit = (event: Event) => {
    event.preventDefault();
    if (form.minor === null) return;
    void form.action.run(async () => {
      const { body } = await api<Payout>("POST", "/v1/payouts", {
        idempotencyKey: form.intent.key,
        body: { amount: form.minor, currency: form.currency, payment_method_id: method || undefined },
      });
      setOutcome(body);
      form.done();
      await list.reload();
    });
  };
  return (
    <Section title="Pay out to your card">
      <form onSubmit={submit}>
        <AmountFields form={form} />
        <MethodSelect value={method} onInput={form.edit(setMethod)} />
        <ProblemView error={form.action.error} />
        <Outcome payment={outcome} />
        <button type="submit" disabled={form.action.busy || form.minor === null}>Pay out</button>
      </form>
      <h3>Payouts</h3>
      <ProblemView error={list.error} />
      <table>
        <thead><tr><th>When</th><th>Status</th><th class="amount">Amount</th></tr></thead>
        <tbody>
          {list.items.map((p) => (
            <tr key={p.id}><td>{when(p.created_at)}</td><td>{p.status}</td><td class="amount">{formatMoney(p.amount, p.currency)}</td></tr>
          ))}
        </tbody>
      </table>
      {list.more && <button type="button" class="secondary" onClick={list.more}>More</button>}
    </Section>
  );
}

/** Where the bank sends the card holder back after 3-D Secure (`#/3ds-return?payment=…`). */
export function ThreeDsReturn({ query }: { query: URLSearchParams }) {
  const id = query.get("payment") ?? query.get("payment_id") ?? "";
  const [payment, setPayment] = useState<Payment | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (id) api<Payment>("GET", `/v1/payments/${encodeURIComponent(id)}`).then(({ body }) => setPayment(body)).catch(setError);
  }, [id]);
  return (
    <Section title="Card authentication">
      {!id && <p>Your bank has finished. See <a href="#/history">your history</a> for the outcome.</p>}
      <ProblemView error={error} />
      <Outcome payment={payment} />
    </Section>
  );
}
