// Teams through Rocket.Chat's public `teams.*` REST API: a team is a main room (`teamMain`) whose
// `teamId` names it; other rooms join the team by carrying the same `teamId`.

import { api, navigate } from './app';
import { roomRoute } from './router';
import type { Room } from './types';

export interface TeamMember {
  user: { _id: string; username: string; name?: string; status?: string };
  roles?: string[];
}

/** Creates a team (its main room is a channel, or a private group) and opens its main room. */
export async function createTeam(name: string, isPrivate: boolean): Promise<void> {
  const res = await api.post('teams.create', { name, type: isPrivate ? 1 : 0 });
  const info = await api.get('rooms.info', { roomId: res.team.roomId });
  navigate(roomRoute(info.room.t, info.room.name, info.room._id));
}

export async function teamRooms(teamId: string): Promise<Room[]> {
  const res = await api.get('teams.listRooms', { teamId, count: 100 });
  return res.rooms ?? [];
}

/** Adds an existing room, named as the user types it (`#` optional), to the team. */
export async function addTeamRoom(teamId: string, roomName: string): Promise<void> {
  const info = await api.get('rooms.info', { roomName: roomName.trim().replace(/^#/, '') });
  await api.post('teams.addRooms', { teamId, rooms: [info.room._id] });
}

export async function removeTeamRoom(teamId: string, roomId: string): Promise<void> {
  await api.post('teams.removeRoom', { teamId, roomId });
}

export async function teamMembers(teamId: string): Promise<TeamMember[]> {
  const res = await api.get('teams.members', { teamId, count: 100 });
  return res.members ?? [];
}

/** Adds a user, by username (`@` optional), to the team. */
export async function addTeamMember(teamId: string, username: string): Promise<void> {
  const info = await api.get('users.info', { username: username.trim().replace(/^@/, '') });
  await api.post('teams.addMembers', { teamId, members: [{ userId: info.user._id, roles: ['member'] }] });
}

export async function removeTeamMember(teamId: string, userId: string): Promise<void> {
  await api.post('teams.removeMember', { teamId, userId });
}
