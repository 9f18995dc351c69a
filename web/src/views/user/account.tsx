// Profile and settings, two-step verification, email verification, sessions.
import { useEffect, useState } from "preact/hooks";
import { api } from "../../api";
import { Field, Notice, ProblemView, Section } from "../../components";
import { useAction, useList, when } from "./shared";

type Me = { id: string; email: string; name: string; phone: string | null; email_verified: boolean; mfa_enabled?: boolean; settings: Record<string, unknown> };
type Session = { id: string; created_at: string; last_used_at?: string; user_agent?: string; current?: boolean };

export function Settings() {
  const [me, setMe] = useState<Me | null>(null);
  const [name, setName] = useState("");
  const [phone, setPhone] = useState("");
  const [notice, setNotice] = useState<string | null>(null);
  const { busy, error, run } = useAction();
  const load = () =>
    run(async () => {
      const { body } = await api<Me>("GET", "/v1/users/me");
      setMe(body);
      setName(body.name);
      setPhone(body.phone ?? "");
    });
  useEffect(() => void load(), []);
  const save = (event: Event) => {
    event.preventDefault();
    void run(async () => {
      const { body } = await api<Me>("PATCH", "/v1/users/me", { body: { name, phone: phone || null } });
      setMe(body);
      setNotice("Saved.");
    });
  };
  const resend = () =>
    void run(async () => {
      await api("POST", "/v1/users/me/verify-email/resend");
      setNotice("We sent you a new verification link.");
    });
  return (
    <>
      <Section title="Profile">
        {me && (
          <p>
            {me.email} · {me.email_verified ? "verified" : <>not verified <button type="button" class="secondary" onClick={resend}>Resend the link</button></>}
          </p>
        )}
        <form onSubmit={save}>
          <Field label="Name" name="name" value={name} onInput={setName} required autocomplete="name" />
          <Field label="Phone" name="phone" type="tel" value={phone} onInput={setPhone} autocomplete="tel" hint="E.164, such as +14155550100." />
          <ProblemView error={error} />
          {notice && <Notice>{notice}</Notice>}
          <button type="submit" disabled={busy}>Save</button>
        </form>
      </Section>
      {me && <TwoStep enabled={Boolean(me.mfa_enabled)} changed={() => void load()} />}
    </>
  );
}

function TwoStep({ enabled, changed }: { enabled: boolean; changed: () => void }) {
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [enrolment, setEnrolment] = useState<{ otpauth_uri: string; secret: string } | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const { busy, error, run } = useAction();
  const start = (event: Event) => {
    event.preventDefault();
    void run(async () => setEnrolment((await api<{ otpauth_uri: string; secret: string }>("POST", "/v1/users/me/mfa/totp", { body: { password } })).body));
  };
  const confirm = (event: Event) => {
    event.preventDefault();
    void run(async () => {
      setCodes((await api<{ recovery_codes: string[] }>("POST", "/v1/users/me/mfa/totp/confirm", { body: { code } })).body.recovery_codes);
      setEnrolment(null);
      changed();
    });
  };
  const disable = (event: Event) => {
    event.preventDefault();
    void run(async () => {
      await api("DELETE", "/v1/users/me/mfa/totp", { body: { password, code } });
      changed();
    });
  };
  return (
    <Section title="Two-step verification">
      <ProblemView error={error} />
      {codes && (
        <div role="status">
          <p><strong>Two-step verification is on.</strong> Keep these recovery codes somewhere safe; each works once:</p>
          <ul data-testid="recovery-codes">{codes.map((c) => <li key={c}><code>{c}</code></li>)}</ul>
        </div>
      )}
      {enabled && !codes && (
        <form onSubmit={disable}>
          <p>On.</p>
          <Field label="Password" name="mfa-password" type="password" value={password} onInput={setPassword} required autocomplete="current-password" />
          <Field label="Code" name="mfa-code" value={code} onInput={setCode} required inputMode="numeric" autocomplete="one-time-code" />
          <button type="submit" disabled={busy}>Turn off</button>
        </form>
      )}
      {!enabled && !enrolment && !codes && (
        <form onSubmit={start}>
          <Field label="Password" name="mfa-password" type="password" value={password} onInput={setPassword} required autocomplete="current-password" />
          <button type="submit" disabled={busy}>Set up an authenticator app</button>
        </form>
      )}
      {enrolment && (
        <form onSubmit={confirm}>
          <p>Add this key to your authenticator app:</p>
          <p><code data-testid="totp-secret">{enrolment.secret}</code></p>
          <p class="muted"><code>{enrolment.otpauth_uri}</code></p>
          <Field label="Code from the app" name="confirm-code" value={code} onInput={setCode} required inputMode="numeric" autocomplete="one-time-code" />
          <button type="submit" disabled={busy}>Turn on</button>
        </form>
      )}
    </Section>
  );
}

export function Sessions() {
  const list = useList<Session>("/v1/auth/sessions");
  const { error, run } = useAction();
  const revoke = (id: string) =>
    void run(async () => {
      await api("DELETE", `/v1/auth/sessions/${encodeURIComponent(id)}`);
      await list.reload();
    });
  return (
    <Section title="Sessions">
      <ProblemView error={list.error ?? error} />
      <table>
        <thead><tr><th>Signed in</th><th>Last used</th><th>Device</th><th>Action</th></tr></thead>
        <tbody>
          {list.items.map((s) => (
            <tr key={s.id}>
              <td>{when(s.created_at)}</td>
              <td>{when(s.last_used_at)}</td>
              <td>{s.user_agent ?? ""}{s.current ? " (this one)" : ""}</td>
              <td><button type="button" class="secondary" onClick={() => revoke(s.id)} aria-label={`Sign out session ${s.id}`}>Sign out</button></td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}
