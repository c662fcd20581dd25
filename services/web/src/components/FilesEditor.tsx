import { lazy, Suspense, useEffect, useMemo, useRef, useState, type KeyboardEvent } from "react";
import { api, ApiError, type Deployment } from "../api";
import { useLeaveGuard } from "../router";
import { ErrorBox } from "./common";
import type { Marker } from "./MonacoEditor";

const MonacoEditor = lazy(() => import("./MonacoEditor"));

export const FILES = [
  { name: "Dockerfile", field: "dockerfile", column: "dockerfile_content", language: "dockerfile" },
  { name: "docker-compose.yml", field: "compose", column: "compose_content", language: "yaml" },
  { name: ".dockerignore", field: "dockerignore", column: "dockerignore_content", language: "ini" },
] as const;

/** "line N: ..." findings (a 422's detail, hadolint warnings) as markers; a finding without a line marks line 1. */
export function markersFrom(error: unknown, warnings: string[]): Marker[] {
  const out: Marker[] = [];
  if (error instanceof ApiError && error.status === 422) {
    out.push({ line: error.line ?? 1, message: `${error.code}: ${error.detail}`, severity: "error" });
  }
  for (const w of warnings) {
    const m = /\bline (\d+)/.exec(w);
    out.push({ line: m ? Number(m[1]) : 1, message: w, severity: "warning" });
  }
  return out;
}

/**
 * The generated files in Monaco tabs. Save validates on the server (PUT /files): a refusal puts a marker on its
 * line; warnings are markers too. Leaving with unsaved changes asks first.
 */
export function FilesEditor({
  deployment,
  onSaved,
  onDirty,
  saveRequest,
}: {
  deployment: Deployment;
  onSaved: () => void;
  onDirty?: (dirty: boolean) => void;
  saveRequest?: number;
}) {
  const saved = useMemo(
    () => Object.fromEntries(FILES.map((f) => [f.name, (deployment[f.column] as string | null) ?? ""])) as Record<string, string>,
    [deployment],
  );
  const [edits, setEdits] = useState<Record<string, string>>({});
  const [current, setCurrent] = useState<string>("Dockerfile");
  const [error, setError] = useState<unknown>(null);
  const [errorFile, setErrorFile] = useState<string | null>(null);
  const [warnings, setWarnings] = useState<string[]>([]);
  const [saving, setSaving] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);

  const dirtyNames = FILES.filter((f) => edits[f.name] !== undefined && edits[f.name] !== saved[f.name]).map((f) => f.name);
  const dirty = dirtyNames.length > 0;
  useLeaveGuard(dirty ? "You have unsaved changes to the deployment files. Leave and lose them?" : null);
  useEffect(() => onDirty?.(dirty), [dirty, onDirty]);

  const files = useMemo(
    () => FILES.map((f) => ({ name: f.name, language: f.language, value: saved[f.name] })),
    [saved],
  );

  const inFlight = useRef(false); // Ctrl+S reaches both the editor and the page: one save at a time
  const save = async () => {
    if (!dirty || inFlight.current) return;
    inFlight.current = true;
    setSaving(true);
    setError(null);
    setNotice(null);
    const body: Record<string, string> = {};
    for (const f of FILES) if (f.field && dirtyNames.includes(f.name)) body[f.field] = edits[f.name];
    try {
      const r = await api<{ saved: boolean; warnings: string[] }>("PUT", `/api/deployments/${deployment.id}/files`, body);
      setWarnings(r.warnings ?? []);
      setErrorFile(null);
      setEdits({});
      setNotice(r.warnings?.length ? `Saved, with ${r.warnings.length} warning(s).` : "Saved.");
      onSaved();
    } catch (exc) {
      setError(exc);
      // The refusal concerns the Dockerfile unless only the compose file was sent.
      setErrorFile(body.dockerfile !== undefined ? "Dockerfile" : "docker-compose.yml");
      if (exc instanceof ApiError && exc.status === 422) {
        setCurrent(body.dockerfile !== undefined ? "Dockerfile" : "docker-compose.yml");
      }
    } finally {
      inFlight.current = false;
      setSaving(false);
    }
  };

  useEffect(() => {
    if (saveRequest) void save();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [saveRequest]);

  const markers = useMemo(
    () => (current === errorFile ? markersFrom(error, []) : []).concat(current === "Dockerfile" ? markersFrom(null, warnings) : []),
    [current, errorFile, error, warnings],
  );

  const onTabKey = (e: KeyboardEvent<HTMLButtonElement>, i: number) => {
    const next = e.key === "ArrowRight" ? i + 1 : e.key === "ArrowLeft" ? i - 1 : null;
    if (next === null) return;
    const f = FILES[(next + FILES.length) % FILES.length];
    setCurrent(f.name);
    document.getElementById(`tab-${f.name}`)?.focus();
  };

  return (
    <section aria-labelledby="files-title">
      <div className="row between">
        <h2 id="files-title">Files</h2>
        <div className="row">
          {dirty && <span className="muted" data-testid="unsaved">Unsaved: {dirtyNames.join(", ")}</span>}
          {notice && !dirty && <span className="ok-text" role="status">{notice}</span>}
          <button
            className="primary"
            onClick={save}
            disabled={!dirty || saving}
            aria-keyshortcuts="Control+S"
            title="Save (Ctrl+S)"
          >
            {saving ? "Checking…" : "Save"}
          </button>
        </div>
      </div>
      <div role="tablist" aria-label="Deployment files" className="tabs">
        {FILES.map((f, i) => (
          <button
            key={f.name}
            id={`tab-${f.name}`}
            role="tab"
            aria-selected={current === f.name}
            tabIndex={current === f.name ? 0 : -1}
            onClick={() => setCurrent(f.name)}
            onKeyDown={(e) => onTabKey(e, i)}
          >
            {f.name}
            {dirtyNames.includes(f.name) ? " •" : ""}
          </button>
        ))}
      </div>
      <ErrorBox error={error} onClose={() => setError(null)} />
      <div role="tabpanel" aria-labelledby={`tab-${current}`}>
        <Suspense fallback={<div className="monaco-host loading">Loading the editor…</div>}>
          <MonacoEditor
            files={files}
            current={current}
            markers={markers}
            onSave={() => void save()}
            onChange={(name, value) => setEdits((e) => ({ ...e, [name]: value }))}
          />
        </Suspense>
      </div>
    </section>
  );
}
