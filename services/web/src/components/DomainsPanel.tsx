import { useState, type FormEvent } from "react";
import { api, type Domains } from "../api";
import { ErrorBox, useLoad } from "./common";

// A first check as you type; the API decides (INVALID_DOMAIN, DOMAIN_TAKEN) and its sentence is shown.
const NAME_RE = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

export function canonical(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, "");
}

/** The deployment's host names on the reverse proxy: list with their URLs, add, remove. PUT replaces the names,
 *  so the panel sends the names set here (never the PORTSIDE_BASE_DOMAIN default, which always stays). */
export function DomainsPanel({ deploymentId, readOnly }: { deploymentId: number; readOnly?: boolean }) {
  const { data, error, setData } = useLoad(() => api<Domains>("GET", `/api/deployments/${deploymentId}/domains`), [deploymentId]);
  const [name, setName] = useState("");
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);

  const own = (data?.domains ?? []).filter((d) => d !== data?.default_domain);
  const wanted = canonical(name);
  const invalid = wanted !== "" && !NAME_RE.test(wanted);
  const already = wanted !== "" && (data?.domains ?? []).includes(wanted);

  const save = async (names: string[], said: string) => {
    setSaving(true);
    setSaveError(null);
    setNotice(null);
    try {
      setData(await api<Domains>("PUT", `/api/deployments/${deploymentId}/domains`, { domains: names }));
      setNotice(said);
      return true;
    } catch (exc) {
      setSaveError(exc);
      return false;
    } finally {
      setSaving(false);
    }
  };

  const add = async (e: FormEvent) => {
    e.preventDefault();
    if (!wanted || invalid || already) return;
    if (await save([...own, wanted], `${wanted} added; a running app answers on it at once.`)) setName("");
  };

  return (
    <section className="card" aria-labelledby="domains-title" data-testid="domains-panel">
      <h3 id="domains-title">Domains</h3>
      <p className="muted small">
        Host names the reverse proxy routes to this app over HTTPS (HTTP redirects). Point each name's DNS at this
        machine; a name routes to one deployment only.
      </p>
      <ErrorBox error={error} />
      {data && data.domains.length === 0 && <p className="muted">No names yet: the app answers on its port only.</p>}
      {data && data.domains.length > 0 && (
        <table className="domains">
          <thead><tr><th>Name</th><th>URL</th><th><span className="sr-only">Remove</span></th></tr></thead>
          <tbody>
            {data.domains.map((d, i) => (
              <tr key={d}>
                <td className="mono">{d}{d === data.default_domain && <span className="muted small"> (default)</span>}</td>
                <td>{data.urls[i] ? <a href={data.urls[i]} target="_blank" rel="noreferrer">{data.urls[i]}</a> : <span className="muted small">proxy off</span>}</td>
                <td>
                  {d === data.default_domain ? (
                    <span className="muted small" title="Made from PORTSIDE_BASE_DOMAIN; it always stays">always routed</span>
                  ) : (
                    <button type="button" onClick={() => save(own.filter((o) => o !== d), `${d} removed.`)} disabled={readOnly || saving} aria-label={`Remove ${d}`}>Remove</button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="row" onSubmit={add}>
        <label>Domain name
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="app.example.com" className="mono" aria-invalid={invalid} disabled={readOnly} />
        </label>
        <button className="primary" type="submit" disabled={readOnly || saving || !wanted || invalid || already}>{saving ? "Saving…" : "Add domain"}</button>
      </form>
      {invalid && <p className="field-error">A host name: letters, digits and hyphens in dot-separated labels (e.g. app.example.com).</p>}
      {already && <p className="field-error">{wanted} is already one of this deployment's names.</p>}
      <ErrorBox error={saveError} onClose={() => setSaveError(null)} />
      {notice && <p className="ok-text" role="status">{notice}</p>}
    </section>
  );
}
