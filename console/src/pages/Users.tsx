import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { SettingsPage } from "../components/SettingsNav";
import { Await, Empty } from "../components/States";
import { formatTime } from "../format";
import { graphql } from "../gql";
import { useSignedIn } from "../session";

const UsersQuery = graphql(`
  query Users {
    users {
      id
      email
      name
      createdAt
      teams {
        team {
          key
        }
        role {
          key
        }
      }
    }
  }
`);

export default function Users() {
  const session = useSignedIn();
  const loaded = useApi(() => (session.can("user:manage") ? gql(UsersQuery) : Promise.resolve(null)), []);
  return (
    <SettingsPage title="Users" permission="user:manage">
      <Await loaded={loaded}>
        {(data) =>
          !data || data.users.length === 0 ? (
            <Empty title="No users" />
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">User</th>
                  <th scope="col">Teams and roles</th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {data.users.map((u) => (
                  <tr key={u.id}>
                    <td>
                      {u.name}
                      <div className="muted">{u.email}</div>
                    </td>
                    <td>
                      {u.teams.map((t) => (
                        <span className="badge" key={t.team.key}>
                          {t.team.key}: {t.role.key}
                        </span>
                      ))}
                    </td>
                    <td>{formatTime(u.createdAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )
        }
      </Await>
    </SettingsPage>
  );
}
