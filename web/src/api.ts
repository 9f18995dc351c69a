// The only way the client talks to Cashew: the contract's HTTP API (shared/API.md), from the
// client's own origin or another one (CORS). Tokens live in sessionStorage: a tab's session
// ends with the tab, and nothing is in a cookie a third site could ride on.

export type FieldError = { field: string; message: string };

/** An RFC 9457 problem body, as every Cashew error is. */
export type Problem = {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  request_id?: string;
  errors?: FieldError[];
  mfa_token?: string;
};

export class ApiError extends Error {
  constructor(readonly problem: Problem, readonly retryAfter: string | null = null) {
    super(problem.detail || problem.title);
  }
}

export type Config = { api: string };
let config: Config = { api: "" };

/** Read `config.json` beside index.html: `{"api": "https://api.example.com/prod"}`, or `""`
 * for the client's own origin (as `make dev` serves it). */
export async function loadConfig(): Promise<Config> {
  try {
    const response = await fetch("./config.json", { cache: "no-store" });
    if (response.ok) config = { api: String((await response.json()).api ?? "").replace(/\/$/, "") };
  } catch {
    // no config.json: the API is on this origin
  }
  return config;
}

export const apiBase = (): string => config.api;

type Tokens = { access_token: string; refresh_token: string; expires_at: number };
const TOKENS = "cashew.tokens";

export function tokens(): Tokens | null {
  const raw = sessionStorage.getItem(TOKENS);
  return raw ? (JSON.parse(raw) as Tokens) : null;
}

/** Keep the tokens a login, MFA login or refresh answered (`expires_in` seconds). */
export function keepTokens(body: { access_token: string; refresh_token: string; expires_in: number }): void {
  const kept: Tokens = {
    access_token: body.access_token,
    refresh_token: body.refresh_token,
    expires_at: Date.now() + body.expires_in * 1000,
  };
  sessionStorage.setItem(TOKENS, JSON.stringify(kept));
  listeners.forEach((listener) => listener());
}

export function forgetTokens(): void {
  sessionStorage.removeItem(TOKENS);
  listeners.forEach((listener) => listener());
}

const listeners = new Set<() => void>();
/** Call `listener` whenever the signed-in state changes; returns the unsubscribe. */
export function onTokens(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The access token's claims (sub, role, ...), read without verifying: the API verifies. */
export function claims(): Record<string, unknown> | null {
  const kept = tokens();
  if (!kept) return null;
  try {
    const payload = kept.access_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return null;
  }
}

export const isAdmin = (): boolean => claims()?.role === "admin";

/** A fresh Idempotency-Key. Take one per user intent (when a form opens, or after an outcome
 * is shown), never per click: a double click or a retry then sends the same key. */
export const newIntentKey = (): string => crypto.randomUUID();

export type RequestOptions = {
  body?: unknown;
  idempotencyKey?: string;
  auth?: boolean; // default true
  query?: Record<string, string | number | undefined>;
};

export type Answer<T> = { status: number; body: T; headers: Headers };

let refreshing: Promise<boolean> | null = null;

async function refresh(): Promise<boolean> {
  const kept = tokens();
  if (!kept) return false;
  refreshing ??= (async () => {
    try {
      const response = await fetch(`${config.api}/v1/auth/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: kept.refresh_token }),
      });
      if (!response.ok) {
        forgetTokens();
        return false;
      }
      keepTokens(await response.json());
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** One API call. Errors are thrown as ApiError with the problem body; a network failure
 * (including a response CORS withholds) as ApiError with code `network_error`. */
export async function api<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<Answer<T>> {
  const auth = options.auth ?? true;
  if (auth && (tokens()?.expires_at ?? 0) < Date.now() + 30_000) await refresh();
  const send = async (): Promise<Response> => {
    const headers: Record<string, string> = {};
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
    const access = tokens()?.access_token;
    if (auth && access) headers.Authorization = `Bearer ${access}`;
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(options.query ?? {}))
      if (value !== undefined && value !== "") query.set(key, String(value));
    const url = `${config.api}${path}${query.size ? `?${query}` : ""}`;
    return fetch(url, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  };
  let response: Response;
  try {
    response = await send();
    // A 401 from the authorizer carries no CORS headers, so a browser on another origin
    // sees it as a network failure: either way, one refresh and one retry.
    if (response.status === 401 && auth && (await refresh())) response = await send();
  } catch {
    if (auth && tokens() && (await refresh())) {
      try {
        response = await send();
      } catch {
        throw networkError();
      }
    } else throw networkError();
  }
  const text = await response.text();
  const body = text ? JSON.parse(text) : undefined;
  if (!response.ok) throw new ApiError(body as Problem, response.headers.get("Retry-After"));
  return { status: response.status, body: body as T, headers: response.headers };
}

const networkError = (): ApiError =>
  new ApiError({
    type: "about:blank",
    title: "Network error",
    status: 0,
    detail: "Cashew could not be reached. Check your connection and try again.",
    code: "network_error",
  });

export type Page<T> = { data: T[]; has_more: boolean; next_cursor: string | null };
