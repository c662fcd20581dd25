import { useState } from "react";
import { api, type Repository } from "../api";
import { Confirm, ErrorBox } from "./common";

/** Pull and Delete for one repository, used by the Repositories list and the repository page. Pull shows its
 * progress and what it did; Delete asks first and says what is removed. Both are off for viewers. */
export function RepositoryActions({
  repo,
  readOnly,
  onPulled,
  onDeleted,
}: {
  repo: Repository;
  readOnly: boolean;
  onPulled?: (repo: Repository) => void;
  onDeleted: () => void;
}) {
  const [pending, setPending] = useState<null | "pull" | "delete">(null);
  const [confirm, setConfirm] = useState(false);
  const [result, setResult] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const local = repo.url === null; // a folder on the server: nothing to pull, never removed from disk
  const why = readOnly ? "Viewers can read but not change anything" : undefined;

  const pull = async () => {
    setPending("pull");
    setError(null);
    setResult(null);
    try {
      const pulled = await api<Repository>("POST", `/api/repositories/${repo.id}/pull`);
      setResult(
        local
          ? "Nothing to pull: this is a folder on the server, always read as it is."
          : `Pulled the newest commit of ${pulled.branch ?? "the default branch"} at ${new Date().toLocaleTimeString()}.`,
      );
      onPulled?.(pulled);
    } catch (exc) {
      setError(exc);
    } finally {
      setPending(null);
    }
  };

  const remove = async () => {
    setConfirm(false);
    setPending("delete");
    setError(null);
    setResult(null);
    try {
      await api("DELETE", `/api/repositories/${repo.id}`);
      onDeleted();
    } catch (exc) {
      setError(exc);
      setPending(null);
    }
  };

  return (
    <div className="repo-actions">
      <div className="actions">
        <button onClick={pull} disabled={readOnly || pending !== null} title={why} aria-label={`Pull ${repo.name}`}>
          {pending === "pull" ? "Pulling…" : "Pull"}
        </button>
        <button className="danger" onClick={() => setConfirm(true)} disabled={readOnly || pending !== null} title={why} aria-label={`Delete ${repo.name}`}>
          {pending === "delete" ? "Deleting…" : "Delete"}
        </button>
      </div>
      {pending === "pull" && <p className="muted" role="status">Fetching {repo.branch ?? "the default branch"} from {repo.url ?? repo.path}…</p>}
      {result && <p className="muted" role="status">{result}</p>}
      <ErrorBox error={error} onClose={() => setError(null)} />
      {confirm && (
        <Confirm title={`Delete repository ${repo.name}?`} confirmLabel="Delete repository" danger onCancel={() => setConfirm(false)} onConfirm={remove}>
          <p>Removes the repository and every deployment of it: their containers, network, images, logs and volumes (database data is lost).</p>
          {local ? (
            <p>The folder <span className="mono">{repo.path}</span> is yours and stays on disk.</p>
          ) : (
            <p>Also deletes Portside's clone in <span className="mono">{repo.path}</span>; the git repository at <span className="mono">{repo.url}</span> is not touched.</p>
          )}
          <p>Deployments that are building or running must be stopped first.</p>
        </Confirm>
      )}
    </div>
  );
}
