import { useState, type FormEvent } from "react";
import { api, type Repository } from "../api";
import { ErrorBox, timeAgo, useLoad } from "../components/common";
import { RepositoryActions } from "../components/RepositoryActions";
import { useAuth } from "../auth";
import { Link, navigate } from "../router";

/** Every repository; add one from a git URL (+ branch) or a local folder; pull or delete one. */
export function Repositories() {
  const { data, error, loading, reload } = useLoad(() => api<Repository[]>("GET", "/api/repositories"), []);
  const [kind, setKind] = useState<"url" | "path">("url");
  const [url, setUrl] = useState("");
  const [branch, setBranch] = useState("");
  const [path, setPath] = useState("");
  const [adding, setAdding] = useState(false);
  const [actionError, setActionError] = useState<unknown>(null);
  const { user } = useAuth();
  const readOnly = user?.role === "viewer";

  const add = async (e: FormEvent) => {
    e.preventDefault();
    setAdding(true);
    setActionError(null);
    try {
      const body = kind === "url" ? { url: url.trim(), ...(branch.trim() ? { branch: branch.trim() } : {}) } : { path: path.trim() };
      const repo = await api<Repository>("POST", "/api/repositories", body);
      navigate(`/repositories/${repo.id}`);
    } catch (exc) {
      setActionError(exc);
    } finally {
      setAdding(false);
    }
  };

  return (
    <main>
      <h1>Repositories</h1>
      <form className="card" onSubmit={add} aria-labelledby="add-title">
        <h2 id="add-title">Add a repository</h2>
        <fieldset className="row">
          <legend className="sr-only">Where the code is</legend>
          <label className="inline"><input type="radio" name="kind" checked={kind === "url"} onChange={() => setKind("url")} /> Git URL</label>
          <label className="inline"><input type="radio" name="kind" checked={kind === "path"} onChange={() => setKind("path")} /> Folder on this machine</label>
        </fieldset>
        {kind === "url" ? (
          <div className="row">
            <label className="grow">Git URL<input required value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://github.com/you/app.git" /></label>
            <label>Branch<input value={branch} onChange={(e) => setBranch(e.target.value)} placeholder="default branch" /></label>
          </div>
        ) : (
          <label>Absolute path<input required value={path} onChange={(e) => setPath(e.target.value)} placeholder="/home/you/projects/app" /></label>
        )}
        <ErrorBox error={actionError} />
        {readOnly && <p className="muted">Viewers can read everything but add nothing.</p>}
        <button className="primary" type="submit" disabled={adding || readOnly}>{adding ? (kind === "url" ? "Cloning…" : "Adding…") : "Add repository"}</button>
      </form>
      <ErrorBox error={error} />
      {!loading && (data ?? []).length === 0 && <p className="muted">No repositories yet.</p>}
      {(data ?? []).length > 0 && (
        <table>
          <thead><tr><th>Name</th><th>Source</th><th>Branch</th><th>Added</th><th>Actions</th></tr></thead>
          <tbody>
            {(data ?? []).map((r) => (
              <tr key={r.id}>
                <td><Link to={`/repositories/${r.id}`}>{r.name}</Link></td>
                <td className="mono">{r.url ?? r.path}</td>
                <td>{r.branch ?? "-"}</td>
                <td>{timeAgo(r.created_at)}</td>
                <td><div className="actions">
                  <Link to={`/repositories/${r.id}`} className="button">Open</Link>
                  <RepositoryActions repo={r} readOnly={readOnly} onDeleted={() => void reload()} />
                </div></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
