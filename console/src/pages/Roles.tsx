// Roles (role:manage): each role's permissions, and a new role from the permission catalogue.
import { useState, type FormEvent } from "react";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { SettingsPage } from "../components/SettingsNav";
import { Await, FormFooter } from "../components/States";
import { graphql } from "../gql";
import { useSignedIn } from "../session";

const RolesQuery = graphql(`
  query Roles {
    roles {
      id
      key
      name
      permissions
    }
    permissions
  }
`);

const CreateRole = graphql(`
  mutation CreateRole($input: RoleCreate!) {
    createRole(input: $input) {
      key
    }
  }
`);

export default function Roles() {
  const session = useSignedIn();
  const allowed = session.can("role:manage");
  const loaded = useApi(() => (allowed ? gql(RolesQuery) : Promise.resolve(null)), [allowed]);
  const [name, setName] = useState("");
  const [key, setKey] = useState("");
  const [chosen, setChosen] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      await gql(CreateRole, { input: { name, key: key || null, permissions: chosen } });
      setName("");
      setKey("");
      setChosen([]);
      loaded.reload();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <SettingsPage title="Roles" permission="role:manage">
      <Await loaded={loaded}>
        {(data) =>
          data && (
            <>
              <table>
                <thead>
                  <tr>
                    <th scope="col">Role</th>
                    <th scope="col">Permissions</th>
                  </tr>
                </thead>
                <tbody>
                  {data.roles.map((r) => (
                    <tr key={r.id}>
                      <td>
                        {r.name}
                        <div className="muted mono">{r.key}</div>
                      </td>
                      <td>
                        {r.permissions.map((p) => (
                          <span className="badge mono" key={p}>
                            {p}
                          </span>
                        ))}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <form className="card schema-form" onSubmit={submit} aria-label="New role">
                <h2>New role</h2>
                <div className="inline-form">
                  <label>
                    Role name
                    <input required value={name} onChange={(e) => setName(e.target.value)} />
                  </label>
                  <label>
                    Role key <span className="muted">(optional)</span>
                    <input value={key} onChange={(e) => setKey(e.target.value)} placeholder="from the name" />
                  </label>
                </div>
                <fieldset className="permissions">
                  <legend>Permissions</legend>
                  {data.permissions.map((p) => (
                    <label key={p} className="check">
                      <input
                        type="checkbox"
                        checked={chosen.includes(p)}
                        onChange={(e) => setChosen(e.target.checked ? [...chosen, p] : chosen.filter((c) => c !== p))}
                      />
                      <span className="mono">{p}</span>
                    </label>
                  ))}
                </fieldset>
                <FormFooter error={error} submit="Create role" />
              </form>
            </>
          )
        }
      </Await>
    </SettingsPage>
  );
}
