import { useState } from "react";
import { api, type Release } from "../api";
import { Confirm, ErrorBox, timeAgo, useLoad } from "./common";

/** What ran after each successful start, newest first, each a rollback target: POST .../rollback?release_id=N
 *  runs that image again with the files, limits and variables it ran with (no build). */
export function ReleasesPanel({
  deploymentId,
  runningImage,
  busy,
  readOnly,
  onRolledBack,
}: {
  deploymentId: number;
  runningImage: string | null;
  busy: boolean;
  readOnly?: boolean;
  onRolledBack: () => void;
}) {
  // Loaded again when what runs changes: a deploy or rollback that finished adds a release.
  const { data, error } = useLoad(() => api<Release[]>("GET", `/api/deployments/${deploymentId}/releases`), [deploymentId, runningImage]);
  const [target, setTarget] = useState<Release | null>(null);
  const [pending, setPending] = useState(false);
  const [rollError, setRollError] = useState<unknown>(null);

  const rollback = async (release: Release) => {
    setTarget(null);
    setPending(true);
    setRollError(null);
    try {
      await api("POST", `/api/deployments/${deploymentId}/rollback?release_id=${release.id}`);
      onRolledBack();
    } catch (exc) {
      setRollError(exc);
    } finally {
      setPending(false);
    }
  };

  return (
    <section className="card" aria-labelledby="releases-title" data-testid="releases-panel">
      <h3 id="releases-title">Releases</h3>
      <p className="muted small">Each successful start is a release. Rolling back runs its image again with its configuration; nothing is built.</p>
      <ErrorBox error={error} />
      {data && data.length === 0 && <p className="muted">No release yet: deploy once and the first one appears here.</p>}
      {data && data.length > 0 && (
        <table className="releases">
          <thead><tr><th>Release</th><th>Image</th><th>Started</th><th>CPUs</th><th>Memory</th><th>Variables</th><th><span className="sr-only">Action</span></th></tr></thead>
          <tbody>
            {data.map((r) => {
              const current = r.image_tag === runningImage && r.id === data.find((x) => x.image_tag === runningImage)?.id;
              return (
                <tr key={r.id} aria-current={current ? "true" : undefined}>
                  <td>#{r.id}{current && <span className="badge badge-ok small">running</span>}</td>
                  <td className="mono small">{r.image_tag}</td>
                  <td title={r.created_at}>{timeAgo(r.created_at)}</td>
                  <td>{r.cpu_limit ?? "-"}</td>
                  <td>{r.memory_limit ?? "-"}</td>
                  <td className="mono small">{r.env_keys.join(", ") || "-"}</td>
                  <td>
                    <button type="button" onClick={() => setTarget(r)} disabled={readOnly || busy || pending || current} aria-label={`Roll back to release ${r.id}`}
                      title={current ? "This release is what runs now" : busy ? "Wait until the deployment is not busy" : `Run ${r.image_tag} again`}>
                      {pending ? "Rolling back…" : "Roll back"}
                    </button>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <ErrorBox error={rollError} onClose={() => setRollError(null)} />
      {target && (
        <Confirm title={`Roll back to release #${target.id}?`} confirmLabel="Roll back" onCancel={() => setTarget(null)} onConfirm={() => rollback(target)}>
          <p>Replaces the running app with {target.image_tag}, with the limits and variables it ran with{target.env_keys.length ? ` (${target.env_keys.join(", ")})` : ""}.</p>
        </Confirm>
      )}
    </section>
  );
}
