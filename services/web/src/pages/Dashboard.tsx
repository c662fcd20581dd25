import { useState } from "react";
import { api, type DeploymentSummary } from "../api";
import { BUSY, ErrorBox, StatusBadge, timeAgo, useInterval, useLoad } from "../components/common";
import { useAuth } from "../auth";
import { Link } from "../router";

/** Every deployment at a glance, refreshed every 5 seconds, with quick actions. */
export function Dashboard() {
  const { data, error, reload, loading } = useLoad(() => api<DeploymentSummary[]>("GET", "/api/deployments"), []);
  const [actionError, setActionError] = useState<unknown>(null);
  const [busy, setBusy] = useState<number | null>(null);
  const readOnly = useAuth().user?.role === "viewer";
  useInterval(() => void reload(), 5000);

  const act = async (d: DeploymentSummary, action: "deploy" | "stop") => {
    setBusy(d.id);
    setActionError(null);
    try {
      await api("POST", `/api/deployments/${d.id}/${action}`);
      await reload();
    } catch (exc) {
      setActionError(exc);
    } finally {
      setBusy(null);
    }
  };

  const rows = data ?? [];
  const running = rows.filter((d) => d.status === "running").length;
  return (
    <main>
      <div className="row between">
        <h1>Dashboard</h1>
        <Link to="/repositories" className="button primary">Add a repository</Link>
      </div>
      <ErrorBox error={error || actionError} />
      {!loading && rows.length === 0 && !error && (
        <div className="card empty">
          <h2>Nothing deployed yet</h2>
          <p>Add a repository (a git URL or a folder on this machine). Portside detects its stack, writes a Dockerfile and
            a compose file you can edit, then builds and runs it.</p>
          <Link to="/repositories" className="button primary">Add your first repository</Link>
        </div>
      )}
      {rows.length > 0 && (
        <>
          <p className="muted">{rows.length} deployment{rows.length === 1 ? "" : "s"}, {running} running.</p>
          <table className="deployments">
            <thead>
              <tr><th>Deployment</th><th>Status</th><th>Stack</th><th>Port</th><th>Last deploy</th><th>Actions</th></tr>
            </thead>
            <tbody>
              {rows.map((d) => (
                <tr key={d.id}>
                  <td><Link to={`/deployments/${d.id}`}>#{d.id} {d.repo_name}{d.app_path ? `/${d.app_path}` : ""}</Link></td>
                  <td><StatusBadge status={d.status} /></td>
                  <td>{d.stack ?? "-"}</td>
                  <td>{d.port ?? "-"}</td>
                  <td>{timeAgo(d.started_at ?? d.created_at)}</td>
                  <td><div className="actions">
                    {d.status === "running" ? (
                      <button disabled={readOnly || busy === d.id} onClick={() => act(d, "stop")} aria-label={`Stop deployment ${d.id}`}>Stop</button>
                    ) : (
                      <button disabled={readOnly || busy === d.id || BUSY.has(d.status)} onClick={() => act(d, "deploy")} aria-label={`Deploy deployment ${d.id}`}>Deploy</button>
                    )}
                  </div></td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </main>
  );
}
