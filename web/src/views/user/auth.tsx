// Signing up, verifying the email, signing in (with MFA), resetting a password.
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, keepTokens } from "../../api";
import { Field, Notice, ProblemView, Section } from "../../components";
import { navigate } from "../../router";
import { useAction } from "./shared";

type Tokens = { access_token: string; refresh_token: string; expires_in: number };

export function SignUp() {
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [done, setDone] = useState(false);
  const { busy, error, run } = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void run(async () => {
      await api("POST", "/v1/users", { auth: false, body: { name, email, password } });
      setDone(true);
    });
  };
  if (done)
    return (
      <Section title="Check your email">
        <Notice>We sent a link to {email}. Open it to verify your email, then sign in.</Notice>
        <a href="#/sign-in">Sign in</a>
      </Section>
    );
  return (
    <Section title="Create your account">
      <form onSubmit={submit}>
        <Field label="Name" name="name" value={name} onInput={setName} required autocomplete="name" />
        <Field label="Email" name="email" type="email" value={email} onInput={setEmail} required autocomplete="email" />
        <Field label="Password" name="password" type="password" value={password} onInput={setPassword} required autocomplete="new-password" hint="At least 12 characters." />
        <ProblemView error={error} />
        <button type="submit" disabled={busy}>Create account</button>
      </form>
      <p>Have an account? <a href="#/sign-in">Sign in</a></p>
    </Section>
  );
}

export function VerifyEmail({ query }: { query: URLSearchParams }) {
  const token = query.get("token") ?? "";
  const [verified, setVerified] = useState(false);
  const { error, run } = useAction();
  useEffect(() => {
    // The token leaves the address bar (and the history) once read
    if (token) window.history.replaceState(null, "", "#/verify-email");
    if (token)
      void run(async () => {
        await api("POST", "/v1/users/verify-email", { auth: false, body: { token } });
        setVerified(true);
      });
  }, [token]);
  return (
    <Section title="Verify your email">
      {verified ? <Notice>Your email is verified.</Notice> : !error && <p>Verifying…</p>}
      <ProblemView error={error} />
      <a href="#/">Continue</a>
    </Section>
  );
}

export function SignIn() {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [mfaToken, setMfaToken] = useState<string | null>(null);
  const [code, setCode] = useState("");
  const { busy, error, run, setError } = useAction();
  const signedIn = (tokens: Tokens) => {
    keepTokens(tokens);
    navigate("/");
  };
  const submit = (event: Event) => {
    event.preventDefault();
    void run(async () => {
      try {
        const { body } = await api<Tokens>("POST", "/v1/auth/login", { auth: false, body: { email, password } });
        signedIn(body);
      } catch (caught) {
        if (caught instanceof ApiError && caught.problem.code === "mfa_required" && caught.problem.mfa_token) {
          setMfaToken(caught.problem.mfa_token);
          setError(null);
          return;
        }
        throw caught;
      }
    });
  };
  const submitCode = (event: Event) => {
    event.preventDefault();
    const body = /^\d{6}$/.test(code.trim())
      ? { mfa_token: mfaToken, code: code.trim() }
      : { mfa_token: mfaToken, recovery_code: code.trim() };
    void run(async () => signedIn((await api<Tokens>("POST", "/v1/auth/login/mfa", { auth: false, body })).body));
  };
  if (mfaToken)
    return (
      <Section title="Two-step verification">
        <form onSubmit={submitCode}>
          <Field label="Code from your authenticator app (or a recovery code)" name="code" value={code} onInput={setCode} required autocomplete="one-time-code" inputMode="numeric" />
          <ProblemView error={error} />
          <button type="submit" disabled={busy}>Verify</button>
        </form>
      </Section>
    );
  return (
    <Section title="Sign in">
      <form onSubmit={submit}>
        <Field label="Email" name="email" type="email" value={email} onInput={setEmail} required autocomplete="username" />
        <Field label="Password" name="password" type="password" value={password} onInput={setPassword} required autocomplete="current-password" />
        <ProblemView error={error} />
        <button type="submit" disabled={busy}>Sign in</button>
      </form>
      <p>
        New here? <a href="#/sign-up">Create an account</a> · <a href="#/forgot-password">Forgot your password?</a>
      </p>
    </Section>
  );
}

export function ForgotPassword() {
  const [email, setEmail] = useState("");
  const [sent, setSent] = useState(false);
  const { busy, error, run } = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void run(async () => {
      await api("POST", "/v1/auth/password-reset", { auth: false, body: { email } });
      setSent(true);
    });
  };
  return (
    <Section title="Reset your password">
      {sent ? (
        <Notice>If {email} has an account, we sent it a link.</Notice>
      ) : (
        <form onSubmit={submit}>
          <Field label="Email" name="email" type="email" value={email} onInput={setEmail} required autocomplete="email" />
          <ProblemView error={error} />
          <button type="submit" disabled={busy}>Send the link</button>
        </form>
      )}
    </Section>
  );
}

export function ResetPassword({ query }: { query: URLSearchParams }) {
  const [password, setPassword] = useState("");
  const [done, setDone] = useState(false);
  // Read once, then taken out of the address bar (and the history)
  const [token] = useState(() => query.get("token") ?? "");
  useEffect(() => window.history.replaceState(null, "", "#/reset-password"), []);
  const { busy, error, run } = useAction();
  const submit = (event: Event) => {
    event.preventDefault();
    void run(async () => {
      await api("POST", "/v1/auth/password-reset/confirm", {
        auth: false,
        body: { token, new_password: password },
      });
      setDone(true);
    });
  };
  return (
    <Section title="Choose a new password">
      {done ? (
        <Notice>
          Your password is changed and every session signed out. <a href="#/sign-in">Sign in</a>
        </Notice>
      ) : (
        <form onSubmit={submit}>
          <Field label="New password" name="new_password" type="password" value={password} onInput={setPassword} required autocomplete="new-password" />
          <ProblemView error={error} />
          <button type="submit" disabled={busy}>Change password</button>
        </form>
      )}
    </Section>
  );
}
