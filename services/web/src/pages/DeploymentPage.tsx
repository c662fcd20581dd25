import { useCallback, useEffect, useState } from "react";
import { api, type Deployment, type Detection } from "../api";
import { useAuth } from "../auth";
import { DetectionPanel } from "../components/DetectionPanel";
import { DomainsPanel } from "../components/DomainsPanel";
import { FilesEditor } from "../components/FilesEditor";
import { LogsPanel } from "../components/LogsPanel";
import { ReleasesPanel } from "../components/ReleasesPanel";
import { SettingsPanel } from "../components/SettingsPanel";
import { StatusPanel } from "../components/StatusPanel";
import { BUSY, Confirm, ErrorBox, StatusBadge, useInterval, useLoad } from "../components/common";
import { Link, navigate } from "../router";

const TABS = ["Overview", "Files", "Settings", "Domains", "Releases", "Detection"] as const;
type Tab = (typeof TABS)[number];
const STOPPABLE = new Set(["queued", "building", "starting", "running", "crashed", "stopping"]);
const DEPLOYABLE = new Set(["ready", "stopped", "build_failed", "crashed", "error", "detected", "pending", "running"]);

/** What each action does when it cannot apply now, for the button's title. */
export function actionState(d: Pick<Deployment, "status" | "previous_image_tag" | "dockerfile_content">) {
  const busy = BUSY.has(d.status);
  return {
    deploy: !busy && DEPLOYABLE.has(d.status) && !!d.dockerfile_content,
    stop: STOPPABLE.has(d.status) && d.status !== "stopping",
    cancel: d.status === "queued" || d.status === "building",
    rollback: !busy && !!d.previous_image_tag,
    generate: !busy,
    detect: !busy,
    delete: d.status !== "stopping",
  };
}

export function DeploymentPage({ id }: { id: number }) {
  const { user } = useAuth();
  const readOnly = user?.role === "viewer";
  const { data: d, error, reload } = useLoad(() => api<Deployment>("GET", `/api/deployments/${id}`), [id]);
  const [tab, setTab] = useState<Tab>("Overview");
  const [actionError, setActionError] = useState<unknown>(null);
  const [pending, setPending] = useState<string | null>(null);
  const [confirm, setConfirm] = useState<null | "delete" | "rollback" | "deploy-dirty">(null);
  const [purge, setPurge] = useState(false);
  const [progress, setProgress] = useState<{ step: number; total: number } | null>(null);
  const [dirty, setDirty] = useState(false);
  const [saveRequest, setSaveRequest] = useState(0);
  const [detection, setDetection] = useState<Detection | null>(null);
  const [stackOverride, setStackOverride] = useState("");

  const busy = d ? BUSY.has(d.status) : false;
  useInterval(() => void reload(), busy || pending ? 1500 : 5000);
  useEffect(() => {
    if (d && d.status !== "building") setProgress(null);
  }, [d]);

  const act = useCallback(
    async (action: "deploy" | "stop" | "rollback" | "cancel") => {
      setConfirm(null);
      setPending(action);
      setActionError(null);
      if (action === "deploy") setProgress(null);
      try {
        await api("POST", `/api/deployments/${id}/${action}`);
        await reload();
      } catch (exc) {
        setActionError(exc);
      } finally {
        setPending(null);
      }
    },
    [id, reload],
  );

  const remove = async () => {
    setConfirm(null);
    setPending("delete");
    setActionError(null);
    try {
      await api("DELETE", `/api/deployments/${id}${purge ? "?purge=true" : ""}`);
      navigate("/");
    } catch (exc) {
      setActionError(exc);
      setPending(null);
    }
  };

  const detect = async () => {
    if (!d) return;
    setPending("detect");
    setActionError(null);
    try {
      setDetection(await api<Detection>("POST", `/api/deployments/detect/${d.repository_id}`, { app_path: d.app_path }));
      setTab("Detection");
    } catch (exc) {
      setActionError(exc);
    } finally {
      setPending(null);
    }
  };

  const generate = async () => {
    if (!d) return;
    setPending("generate");
    setActionError(null);
    try {
      const body: Record<string, unknown> = { app_path: d.app_path };
      // Only the user's choice: the stored stack is the one last generated, and the app may be another stack now.
      if (stackOverride) body.stack = stackOverride;
      if (d.internal_port) body.internal_port = d.internal_port;
      if (d.cpu_limit) body.cpu_limit = d.cpu_limit;
      if (d.memory_limit) body.memory_limit = d.memory_limit;
      const r = await api<{ deployment_id: number }>("POST", `/api/deployments/generate/${d.repository_id}`, body);
      navigate(`/deployments/${r.deployment_id}`);
    } catch (exc) {
      setActionError(exc);
    } finally {
      setPending(null);
    }
  };

  const can = d ? actionState(d) : null;
  const deploy = useCallback(() => {
    if (!can?.deploy || pending || readOnly) return;
    if (dirty) setConfirm("deploy-dirty");
    else void act("deploy");
  }, [can?.deploy, pending, readOnly, dirty, act]);

  // Keyboard: Ctrl+Shift+Enter deploys, Ctrl+S saves the files (also inside the editor).
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const mod = e.ctrlKey || e.metaKey;
      if (mod && e.shiftKey && e.key === "Enter") {
        e.preventDefault();
        deploy();
      } else if (mod && !e.shiftKey && e.key.toLowerCase() === "s") {
        e.preventDefault();
        setTab("Files");
        setSaveRequest((n) => n + 1);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [deploy]);

  if (!d) {
    return (
      <main>
        <ErrorBox error={error} />
        {!error && <p className="muted" role="status">Loading deployment {id}…</p>}
      </main>
    );
  }

  const showProgress = d.status === "building" || d.status === "queued" || d.status === "starting";
  return (
    <main className="deployment">
      <p className="crumbs">
        <Link to="/">Dashboard</Link> / <Link to={`/repositories/${d.repository_id}`}>{d.repo_name}</Link> / deployment #{d.id}
      </p>
      <div className="row between header">
        <div className="row">
          <h1>{d.repo_name}{d.app_path ? `/${d.app_path}` : ""}</h1>
          <StatusBadge status={d.status} />
          {d.url && <a href={d.url} target="_blank" rel="noreferrer" className="app-link">{d.url}</a>}
        </div>
        <div className="row actions" role="toolbar" aria-label="Deployment actions">
          <button onClick={detect} disabled={!can?.detect || !!pending || readOnly}>Detect</button>
          <button onClick={generate} disabled={!can?.generate || !!pending || readOnly} title="Generate the files again as a new deployment">Generate</button>
          <button className="primary" onClick={deploy} disabled={!can?.deploy || !!pending || readOnly} aria-keyshortcuts="Control+Shift+Enter" title="Deploy (Ctrl+Shift+Enter)">
            {pending === "deploy" ? "Queuing…" : d.status === "running" ? "Redeploy" : "Deploy"}
          </button>
          {can?.cancel && (
            <button onClick={() => act("cancel")} disabled={!!pending || readOnly} title="Cancel the build: its container is killed">Cancel build</button>
          )}
          <button onClick={() => act("stop")} disabled={!can?.stop || !!pending || readOnly}>{d.status === "stopping" ? "Stopping…" : "Stop"}</button>
          <button onClick={() => setConfirm("rollback")} disabled={!can?.rollback || !!pending || readOnly} title={d.previous_image_tag ? `Run ${d.previous_image_tag} again` : "No earlier successful image yet"}>Rollback</button>
          <button className="danger" onClick={() => setConfirm("delete")} disabled={!can?.delete || !!pending || readOnly}>Delete</button>
        </div>
      </div>
      {showProgress && (
        <div className="progress" role="status" aria-live="polite" data-testid="build-progress">
          {(d.status === "building" || d.status === "queued") && progress ? (
            <>
              Building: step {progress.step} of {progress.total}
              <div className="bar"><div className="fill fill-busy" style={{ width: `${(progress.step / progress.total) * 100}%` }} /></div>
            </>
          ) : (
            <>{d.status === "queued" ? "Queued…" : d.status === "building" ? "Building…" : "Starting the app and waiting until it answers…"}</>
          )}
        </div>
      )}
      {d.error_message && !busy && d.status !== "running" && (
        <div className="error" role="alert"><strong className="code">{d.error_code}</strong> {d.error_message}</div>
      )}
      <ErrorBox error={actionError} onClose={() => setActionError(null)} />
      <div role="tablist" aria-label="Deployment sections" className="tabs">
        {TABS.map((t) => (
          <button key={t} role="tab" id={`dtab-${t}`} aria-selected={tab === t} aria-controls={`dpanel-${t}`} onClick={() => setTab(t)}>
            {t}{t === "Files" && dirty ? " •" : ""}
          </button>
        ))}
      </div>
      <div id="dpanel-Overview" role="tabpanel" aria-labelledby="dtab-Overview" hidden={tab !== "Overview"} className="overview">
        <StatusPanel deploymentId={d.id} status={d.status} />
        <LogsPanel deploymentId={d.id} onProgress={(step, total) => setProgress({ step, total })} />
      </div>
      <div id="dpanel-Files" role="tabpanel" aria-labelledby="dtab-Files" hidden={tab !== "Files"}>
        <FilesEditor deployment={d} onSaved={reload} onDirty={setDirty} saveRequest={saveRequest} />
      </div>
      <div id="dpanel-Settings" role="tabpanel" aria-labelledby="dtab-Settings" hidden={tab !== "Settings"}>
        <SettingsPanel deployment={d} readOnly={readOnly} />
      </div>
      <div id="dpanel-Domains" role="tabpanel" aria-labelledby="dtab-Domains" hidden={tab !== "Domains"}>
        {tab === "Domains" && <DomainsPanel deploymentId={d.id} readOnly={readOnly} />}
      </div>
      <div id="dpanel-Releases" role="tabpanel" aria-labelledby="dtab-Releases" hidden={tab !== "Releases"}>
        {tab === "Releases" && (
          <ReleasesPanel deploymentId={d.id} runningImage={d.running_image_tag} busy={busy || !!pending} readOnly={readOnly} onRolledBack={() => void reload()} />
        )}
      </div>
      <div id="dpanel-Detection" role="tabpanel" aria-labelledby="dtab-Detection" hidden={tab !== "Detection"}>
        {detection ? (
          <>
            <DetectionPanel detection={detection} stack={stackOverride} onStack={setStackOverride} appPath={d.app_path} />
            <p className="muted">Press Generate to write new files{stackOverride ? ` for ${stackOverride}` : ""} as a new deployment.</p>
          </>
        ) : (
          <div className="card">
            <dl className="facts">
              <div><dt>Stack</dt><dd>{d.stack ?? "-"}</dd></div>
              <div><dt>Framework</dt><dd>{d.framework ?? "-"}</dd></div>
              <div><dt>Package manager</dt><dd>{d.package_manager ?? "-"}</dd></div>
              <div><dt>Port</dt><dd>{d.internal_port ?? "-"}</dd></div>
              <div><dt>Database</dt><dd>{d.detected_db ?? "-"}</dd></div>
              <div><dt>Confidence</dt><dd>{d.confidence_score ?? "-"}%</dd></div>
            </dl>
            <p className="muted">Press Detect to see the evidence, the alternatives and a stack override.</p>
          </div>
        )}
      </div>
      {confirm === "delete" && (
        <Confirm title={`Delete deployment #${d.id}?`} confirmLabel="Delete deployment" danger onCancel={() => setConfirm(null)} onConfirm={remove}>
          <p>Stops the app and removes its containers, images, logs and files.</p>
          <label className="inline"><input type="checkbox" checked={purge} onChange={(e) => setPurge(e.target.checked)} /> Also delete its volumes (database data is lost)</label>
        </Confirm>
      )}
      {confirm === "rollback" && (
        <Confirm title="Roll back?" confirmLabel="Roll back" onCancel={() => setConfirm(null)} onConfirm={() => act("rollback")}>
          <p>Replaces the running app with the previous successful image ({d.previous_image_tag}).</p>
        </Confirm>
      )}
      {confirm === "deploy-dirty" && (
        <Confirm title="Deploy without your unsaved edits?" confirmLabel="Deploy the saved files" onCancel={() => setConfirm(null)} onConfirm={() => act("deploy")}>
          <p>The files editor has unsaved changes; a deploy builds the saved files. Save first (Ctrl+S) to deploy your edits.</p>
        </Confirm>
      )}
    </main>
  );
}
