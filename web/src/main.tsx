import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { claims, forgetTokens, isAdmin, loadConfig, onTokens, tokens, api } from "./api";
import { type Route, navigate, useLocation } from "./router";
import { adminRoutes } from "./views/admin";
import { userRoutes } from "./views/user";
import "./style.css";

const routes: Route[] = [...userRoutes, ...adminRoutes];

function useSignedIn(): boolean {
  const [signedIn, setSignedIn] = useState(() => tokens() !== null);
  useEffect(() => onTokens(() => setSignedIn(tokens() !== null)), []);
  return signedIn;
}

function allowed(route: Route, signedIn: boolean): boolean {
  if (route.access === "public") return true;
  if (!signedIn) return false;
  return route.access === "user" || isAdmin();
}

async function signOut(): Promise<void> {
  try {
    await api("POST", "/v1/auth/logout", { body: { refresh_token: tokens()?.refresh_token } });
  } catch {
    // signed out here either way
  }
  forgetTokens();
  navigate("/sign-in");
}

function App() {
  const location = useLocation();
  const signedIn = useSignedIn();
  const home = signedIn ? "/" : "/sign-in";
  const route =
    routes.find((r) => r.path === location.path && allowed(r, signedIn)) ??
    routes.find((r) => r.path === home && allowed(r, signedIn));
  useEffect(() => {
    document.title = route ? `${route.title} · Cashew` : "Cashew";
  }, [route]);
  const nav = routes.filter((r) => r.nav !== false && allowed(r, signedIn) && (signedIn ? r.access !== "public" : true));
  const View = route?.view;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById("main")?.focus(); }}>
        Skip to content
      </a>
      <header>
        <a class="brand" href="#/">Cashew</a>
        <nav aria-label="Main">
          <ul>
            {nav.map((r) => (
              <li key={r.path}>
                <a href={`#${r.path}`} aria-current={r === route ? "page" : undefined}>
                  {r.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        {signedIn && (
          <div class="who">
            <span class="muted">{String(claims()?.email ?? claims()?.sub ?? "")}</span>
            <button type="button" onClick={signOut}>Sign out</button>
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {View ? <View query={location.query} /> : <p>Nothing here.</p>}
      </main>
    </>
  );
}

await loadConfig();
render(<App />, document.getElementById("app")!);
