import { useCallback, useEffect, useRef, useState, useSyncExternalStore, type ReactNode } from "react";
import { ApiError, online } from "../api";

/** An API error as a sentence with its code, announced to screen readers. */
export function ErrorBox({ error, onClose }: { error: unknown; onClose?: () => void }) {
  if (!error) return null;
  const e = error as ApiError;
  const code = e instanceof ApiError ? e.code : "ERROR";
  const detail = e instanceof ApiError ? e.detail : String((error as Error)?.message ?? error);
  return (
    <div className="error" role="alert">
      <strong className="code">{code}</strong> <span>{detail}</span>
      {onClose && (
        <button className="link" onClick={onClose} aria-label="Dismiss the error">
          ×
        </button>
      )}
    </div>
  );
}

const STATUS_KIND: Record<string, string> = {
  running: "ok",
  ready: "info",
  detected: "info",
  stopped: "muted",
  pending: "muted",
  queued: "busy",
  building: "busy",
  starting: "busy",
  stopping: "busy",
  detecting: "busy",
  generating: "busy",
  build_failed: "bad",
  crashed: "bad",
  error: "bad",
};

export const BUSY = new Set(["queued", "building", "starting", "stopping", "detecting", "generating"]);

export function StatusBadge({ status }: { status: string }) {
  return (
    <span className={`badge badge-${STATUS_KIND[status] ?? "muted"}`} data-testid="status-badge">
      {status.replace("_", " ")}
    </span>
  );
}

/** Run something that loads data; `reload` runs it again. Keeps the last good data while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const run = useCallback(load, deps);
  const reload = useCallback(async () => {
    setLoading(true);
    try {
      setData(await run());
      setError(null);
    } catch (exc) {
      setError(exc);
    } finally {
      setLoading(false);
    }
  }, [run]);
  useEffect(() => {
    void reload();
  }, [reload]);
  return { data, error, loading, reload, setData };
}

/** Call `fn` every `ms` while mounted (and once at once). */
export function useInterval(fn: () => void, ms: number | null) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (ms === null) return;
    const t = setInterval(() => ref.current(), ms);
    return () => clearInterval(t);
  }, [ms]);
}

/** The lost-connection banner: shown while the API does not answer; polls /api/health until it does. */
export function ConnectionBanner() {
  const up = useSyncExternalStore(online.subscribe, online.get);
  const [wasDown, setWasDown] = useState(false);
  useEffect(() => {
    if (!up) {
      setWasDown(true);
      const t = setInterval(async () => {
        try {
          const r = await fetch("/api/health", { cache: "no-store" });
          if (r.ok) online.set(true);
        } catch {
          /* still down */
        }
      }, 2000);
      return () => clearInterval(t);
    }
    if (wasDown) {
      const t = setTimeout(() => setWasDown(false), 4000);
      return () => clearTimeout(t);
    }
  }, [up, wasDown]);
  if (up && !wasDown) return null;
  return (
    <div className={up ? "banner banner-ok" : "banner banner-bad"} role="status" aria-live="polite" data-testid="connection-banner">
      {up ? "Connection to Portside restored." : "Lost the connection to Portside's API. Retrying every 2 seconds; nothing you typed is lost."}
    </div>
  );
}

/** A modal that asks before something that loses data. */
export function Confirm({
  title,
  children,
  confirmLabel,
  onConfirm,
  onCancel,
  danger,
}: {
  title: string;
  children?: ReactNode;
  confirmLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
  danger?: boolean;
}) {
  const cancelRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    cancelRef.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === "Escape" && onCancel();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onCancel]);
  return (
    <div className="modal-back">
      <div className="modal" role="dialog" aria-modal="true" aria-labelledby="confirm-title">
        <h2 id="confirm-title">{title}</h2>
        <div>{children}</div>
        <div className="row end">
          <button ref={cancelRef} onClick={onCancel}>
            Cancel
          </button>
          <button className={danger ? "danger" : "primary"} onClick={onConfirm}>
            {confirmLabel}
          </button>
        </div>
      </div>
    </div>
  );
}

export function timeAgo(iso: string | null | undefined): string {
  if (!iso) return "never";
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 60) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

export function duration(seconds: number | null | undefined): string {
  if (seconds == null) return "-";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}
