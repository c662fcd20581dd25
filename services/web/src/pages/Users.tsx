import { useState, type FormEvent } from "react";
import { api, type User } from "../api";
import { ErrorBox, useLoad } from "../components/common";

/** Admins: every user, create one, change a role, disable or enable. */
export function Users() {
  const { data, error, reload } = useLoad(() => api<User[]>("GET", "/api/users"), []);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState("member");
  const [actionError, setActionError] = useState<unknown>(null);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setActionError(null);
    try {
      await api("POST", "/api/users", { email, password, role });
      setEmail("");
      setPassword("");
      await reload();
    } catch (exc) {
      setActionError(exc);
    }
  };
  const patch = async (u: User, change: Record<string, unknown>) => {
    setActionError(null);
    try {
      await api("PATCH", `/api/users/${u.id}`, change);
      await reload();
    } catch (exc) {
      setActionError(exc);
    }
  };
  const disabled = (u: User) => u.disabled ?? (u.is_active === false);

  return (
    <main>
      <h1>Users</h1>
      <ErrorBox error={error || actionError} />
      <table>
        <thead>
          <tr><th>Email</th><th>Role</th><th>State</th><th>Actions</th></tr>
        </thead>
        <tbody>
          {(data ?? []).map((u) => (
            <tr key={u.id}>
              <td>{u.email}</td>
              <td>
                <label className="sr-only" htmlFor={`role-${u.id}`}>Role of {u.email}</label>
                <select id={`role-${u.id}`} value={u.role} onChange={(e) => patch(u, { role: e.target.value })}>
                  <option value="admin">admin</option>
                  <option value="member">member</option>
                  <option value="viewer">viewer (read only)</option>
                </select>
              </td>
              <td>{disabled(u) ? "disabled" : "active"}</td>
              <td>
                <button onClick={() => patch(u, { disabled: !disabled(u) })}>{disabled(u) ? "Enable" : "Disable"}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="card" onSubmit={create}>
        <h2>Add a user</h2>
        <div className="row">
          <label>Email<input type="email" required value={email} onChange={(e) => setEmail(e.target.value)} /></label>
          <label>Password<input type="password" required minLength={8} value={password} onChange={(e) => setPassword(e.target.value)} /></label>
          <label>
            Role
            <select value={role} onChange={(e) => setRole(e.target.value)}>
              <option value="member">member</option>
              <option value="viewer">viewer (read only)</option>
              <option value="admin">admin</option>
            </select>
          </label>
          <button className="primary" type="submit">Add user</button>
        </div>
      </form>
    </main>
  );
}
