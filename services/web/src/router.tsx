// A small history router: the API's SPA fallback answers every page path with index.html.
import { useEffect, useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from "react";

type Guard = () => string | null; // a message asks before leaving, null lets it go
const guards = new Set<Guard>();
const listeners = new Set<() => void>();

function notify() {
  listeners.forEach((l) => l());
}
window.addEventListener("popstate", notify);

export function navigate(to: string, replace = false) {
  if (to === location.pathname + location.search) return;
  for (const g of guards) {
    const msg = g();
    if (msg && !window.confirm(msg)) return;
  }
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  notify();
  window.scrollTo(0, 0);
}

export function usePath(): string {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => location.pathname,
  );
}

/** Ask before leaving the page (in the app and on reload / tab close) while `message` is not null. */
export function useLeaveGuard(message: string | null) {
  useEffect(() => {
    if (!message) return;
    const guard: Guard = () => message;
    const before = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = message;
    };
    guards.add(guard);
    window.addEventListener("beforeunload", before);
    return () => {
      guards.delete(guard);
      window.removeEventListener("beforeunload", before);
    };
  }, [message]);
}

export function Link({ to, ...rest }: { to: string } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  const onClick = (e: MouseEvent<HTMLAnchorElement>) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={onClick} {...rest} />;
}

/** "/deployments/:id" against a path -> params or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const p = pattern.split("/").filter(Boolean);
  const s = path.split("/").filter(Boolean);
  if (p.length !== s.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(":")) params[p[i].slice(1)] = decodeURIComponent(s[i]);
    else if (p[i] !== s[i]) return null;
  }
  return params;
}
