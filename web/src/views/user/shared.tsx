// What the user pages share: an intent's Idempotency-Key, a form's running state, lists.
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, newIntentKey, type Page } from "../../api";

/** The Idempotency-Key of what the user means to do now. It is made when the form is shown
 * and renewed only when the user changes the form (or the form is cleared after its
 * outcome): a double click, or a retry after a network failure, sends the same key, so the
 * API answers the first payment again instead of making a second. */
export function useIntent(): { key: string; renew: () => void } {
  const [key, setKey] = useState(newIntentKey);
  return { key, renew: useCallback(() => setKey(newIntentKey()), []) };
}

/** Run one request at a time for a form: `busy` disables its button, `error` holds the
 * problem to show. */
export function useAction<T>() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  // Set at once, not at the next render: a second click in the same tick is ignored.
  const running = useRef(false);
  const run = async (action: () => Promise<T>): Promise<T | undefined> => {
    if (running.current) return undefined;
    running.current = true;
    setBusy(true);
    setError(null);
    try {
      return await action();
    } catch (caught) {
      setError(caught);
      return undefined;
    } finally {
      running.current = false;
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}

/** A list endpoint's first page, reloadable; `more()` appends the next page. */
export function useList<T>(path: string, query: Record<string, string> = {}) {
  const [items, setItems] = useState<T[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loaded, setLoaded] = useState(false);
  const key = JSON.stringify(query);
  const load = useCallback(
    async (next?: string) => {
      try {
        const { body } = await api<Page<T>>("GET", path, { query: { ...query, limit: 20, cursor: next } });
        setItems((old) => (next ? [...old, ...body.data] : body.data));
        setCursor(body.has_more ? body.next_cursor : null);
        setError(null);
      } catch (caught) {
        setError(caught);
      } finally {
        setLoaded(true);
      }
    },
    // `key` stands for `query`, whose object is new at every render
    [path, key],
  );
  useEffect(() => {
    void load();
  }, [load]);
  return { items, error, loaded, reload: () => load(), more: cursor ? () => load(cursor) : null };
}

export const when = (time: string | null | undefined): string =>
  time ? new Date(time).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
