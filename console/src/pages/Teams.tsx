// Teams (team:manage): make one, give a user a role in a team, take them out of it.
import { useState, type FormEvent } from "react";
import { gql } from "../api/client";
import { useApi } from "../api/useApi";
import { SettingsPage } from "../components/SettingsNav";
import { Await, Empty, FormError } from "../components/States";
import { formatTime } from "../format";
import { graphql } from "../gql";
import { useSignedIn } from "../session";

const TeamsQuery = graphql(`
  query Teams {
    teams {
      id
      key
      name
      createdAt
    }
    roles {
      key
      name
    }
  }
`);

// Members come from the users list, which needs user:manage as well.
const Members = graphql(`
  query TeamMembers {
    users {
      email
      name
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

const CreateTeam = graphql(`
  mutation CreateTeam($input: TeamCreate!) {
    createTeam(input: $input) {
      key
    }
  }
`);

const SetMember = graphql(`
  mutation SetTeamMember($input: TeamMemberSet!) {
    setTeamMember(input: $input) {
      team {
        key
      }
    }
  }
`);

const RemoveMember = graphql(`
  mutation RemoveTeamMember($input: TeamMemberRemove!) {
    removeTeamMember(input: $input) {
      email
    }
  }
`);

export default function Teams() {
  const session = useSignedIn();
  const allowed = session.can("team:manage");
  const loaded = useApi(() => (allowed ? gql(TeamsQuery) : Promise.resolve(null)), [allowed]);
  const members = useApi(() => (allowed && session.can("user:manage") ? gql(Members) : Promise.resolve(null)), [allowed]);
  const [name, setName] = useState("");
  const [key, setKey] = useState("");
  const [member, setMember] = useState({ user: "", team: "", role: "" });
  const [error, setError] = useState<string | null>(null);

  const run = async (action: () => Promise<unknown>, after?: () => void) => {
    setError(null);
    try {
      await action();
      after?.();
      loaded.reload();
      members.reload();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <SettingsPage title="Teams" permission="team:manage">
      <Await loaded={loaded}>
        {(data) => {
          if (!data) return null;
          const team = member.team || data.teams[0]?.key || "";
          const role = member.role || data.roles.find((r) => r.key === "viewer")?.key || data.roles[0]?.key || "";
          const membersOf = (teamKey: string) =>
            (members.data?.users ?? []).flatMap((u) => u.teams.filter((t) => t.team.key === teamKey).map((t) => ({ user: u, role: t.role.key })));
          return (
            <>
              <form
                className="inline-form"
                aria-label="New team"
                onSubmit={(e: FormEvent) => {
                  e.preventDefault();
                  run(() => gql(CreateTeam, { input: { name, key: key || null } }), () => {
                    setName("");
                    setKey("");
                  });
                }}
              >
                <label>
                  Team name
                  <input required value={name} onChange={(e) => setName(e.target.value)} />
                </label>
                <label>
                  Team key <span className="muted">(optional)</span>
                  <input value={key} onChange={(e) => setKey(e.target.value)} placeholder="from the name" />
                </label>
                <button type="submit" className="primary">
                  Create team
                </button>
              </form>
              <form
                className="inline-form"
                aria-label="Set a member"
                onSubmit={(e: FormEvent) => {
                  e.preventDefault();
                  run(() => gql(SetMember, { input: { user: member.user, team, role } }), () => setMember({ ...member, user: "" }));
                }}
              >
                <label>
                  User (email)
                  <input type="email" required value={member.user} onChange={(e) => setMember({ ...member, user: e.target.value })} />
                </label>
                <label>
                  Team
                  <select value={team} onChange={(e) => setMember({ ...member, team: e.target.value })}>
                    {data.teams.map((t) => (
                      <option key={t.key} value={t.key}>
                        {t.name}
                      </option>
                    ))}
                  </select>
                </label>
                <label>
                  Role
                  <select value={role} onChange={(e) => setMember({ ...member, role: e.target.value })}>
                    {data.roles.map((r) => (
                      <option key={r.key} value={r.key}>
                        {r.name}
                      </option>
                    ))}
                  </select>
                </label>
                <button type="submit">Set member</button>
              </form>
              <FormError error={error} />
              {data.teams.length === 0 ? (
                <Empty title="No teams" />
              ) : (
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Team</th>
                      <th scope="col">Members</th>
                      <th scope="col">Created</th>
                    </tr>
                  </thead>
                  <tbody>
                    {data.teams.map((t) => (
                      <tr key={t.id}>
                        <td>
                          {t.name}
                          <div className="muted mono">{t.key}</div>
                        </td>
                        <td>
                          {!members.data ? (
                            <span className="muted">listing members needs user:manage</span>
                          ) : membersOf(t.key).length === 0 ? (
                            <span className="muted">none</span>
                          ) : (
                            <ul className="plain">
                              {membersOf(t.key).map((m) => (
                                <li key={m.user.email}>
                                  {m.user.email} <span className="badge">{m.role}</span>
                                  <button
                                    type="button"
                                    className="link"
                                    aria-label={`Remove ${m.user.email} from ${t.key}`}
                                    onClick={() => run(() => gql(RemoveMember, { input: { user: m.user.email, team: t.key } }))}
                                  >
                                    remove
                                  </button>
                                </li>
                              ))}
                            </ul>
                          )}
                        </td>
                        <td>{formatTime(t.createdAt)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </>
          );
        }}
      </Await>
    </SettingsPage>
  );
}
