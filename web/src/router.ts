import type { ComponentType } from "preact";
import { useEffect, useState } from "preact/hooks";

/** A page of the client, at `#<path>` (the query after `?` is passed to it). */
export type Route = {
  path: string; // "/pay"
  title: string; // in the navigation and the document title
  view: ComponentType<{ query: URLSearchParams }>;
  access: "public" | "user" | "admin"; // public pages are for signed-out visitors
  nav?: boolean; // listed in the navigation (default true)
};

export type Location = { path: string; query: URLSearchParams };

export function currentLocation(): Location {
  const hash = window.location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = hash.split("?", 2);
  return { path: path || "/", query: new URLSearchParams(query) };
}

export function useLocation(): Location {
  const [location, setLocation] = useState(currentLocation);
  useEffect(() => {
    const changed = () => setLocation(currentLocation());
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return location;
}

export const navigate = (path: string): void => {
  window.location.hash = path;
};
