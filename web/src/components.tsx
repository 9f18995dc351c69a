// Small building blocks every view uses, so that errors, fields and money look the same
// everywhere and stay accessible (a label for every input, errors announced).
import type { ComponentChildren } from "preact";
import { ApiError, type Problem } from "./api";

/** A problem body shown as the API wrote it: title, detail, each field's message, and the
 * request id to quote to support. `role="alert"` announces it to screen readers. */
export function ProblemView({ error }: { error: unknown }) {
  if (!error) return null;
  const problem: Problem =
    error instanceof ApiError
      ? error.problem
      : { type: "about:blank", title: "Something went wrong", status: 0, detail: String(error), code: "client_error" };
  return (
    <div class="problem" role="alert" data-code={problem.code}>
      <strong>{problem.title}</strong>
      {problem.detail && <p>{problem.detail}</p>}
      {problem.errors?.length ? (
        <ul>
          {problem.errors.map((e) => (
            <li key={e.field}>
              <code>{e.field}</code>: {e.message}
            </li>
          ))}
        </ul>
      ) : null}
      {error instanceof ApiError && error.retryAfter && <p>Try again in {error.retryAfter} s.</p>}
      {problem.request_id && <p class="muted">Request id: {problem.request_id}</p>}
    </div>
  );
}

export function Field(props: {
  label: string;
  name: string;
  type?: "text" | "email" | "password" | "number" | "url" | "tel";
  value: string;
  onInput: (value: string) => void;
  required?: boolean;
  autocomplete?: string;
  inputMode?: "numeric" | "decimal" | "text" | "email";
  hint?: string;
}) {
  const id = `field-${props.name}`;
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      <input
        id={id}
        name={props.name}
        type={(props.type ?? "text") as "text"}
        value={props.value}
        required={props.required}
        autoComplete={props.autocomplete}
        inputMode={props.inputMode}
        aria-describedby={props.hint ? `${id}-hint` : undefined}
        onInput={(event) => props.onInput((event.target as HTMLInputElement).value)}
      />
      {props.hint && (
        <small id={`${id}-hint`} class="muted">
          {props.hint}
        </small>
      )}
    </div>
  );
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

/** A status line announced politely (a success, a pending outcome). */
export const Notice = ({ children }: { children: ComponentChildren }) => (
  <p class="notice" role="status">
    {children}
  </p>
);
