// The parts of Rocket.Chat's records the client reads (core-typings), dates normalised to Date.

export interface UserRef {
  _id: string;
  username: string;
  name?: string;
}

export interface Attachment {
  title?: string;
  title_link?: string;
  title_link_download?: boolean;
  type?: string;
  description?: string;
  text?: string;
  image_url?: string;
  image_type?: string;
  image_size?: number;
  image_dimensions?: { width: number; height: number };
  image_preview?: string;
  author_name?: string;
  author_icon?: string;
  message_link?: string;
  /** A quote's time (ISO string from REST, `{$date}` over DDP) and its message's `md`. */
  ts?: unknown;
  md?: MdNode[];
  /** A quote's own attachments (files, nested quotes). */
  attachments?: Attachment[];
}

export interface Message {
  _id: string;
  rid: string;
  msg: string;
  ts: Date;
  u: UserRef;
  _updatedAt?: Date;
  t?: string;
  md?: MdNode[];
  tmid?: string;
  tshow?: boolean;
  tcount?: number;
  tlm?: Date;
  reactions?: Record<string, { usernames: string[] }>;
  attachments?: Attachment[];
  file?: { _id: string; name: string; type: string };
  editedAt?: Date;
  editedBy?: UserRef;
  groupable?: boolean;
  pinned?: boolean;
  starred?: { _id: string }[];
  mentions?: UserRef[];
  /** Client only: sent but not yet acknowledged. */
  pending?: boolean;
}

export interface MdNode {
  type: string;
  value?: any;
  [key: string]: any;
}

export interface Subscription {
  _id: string;
  rid: string;
  name: string;
  fname?: string;
  t: 'c' | 'p' | 'd' | 'l';
  unread: number;
  userMentions: number;
  groupMentions?: number;
  alert?: boolean;
  open?: boolean;
  f?: boolean;
  ls?: Date;
  roles?: string[];
  _updatedAt?: Date;
}

export interface Room {
  _id: string;
  t: 'c' | 'p' | 'd' | 'l';
  name?: string;
  fname?: string;
  topic?: string;
  usernames?: string[];
  uids?: string[];
  usersCount?: number;
  ro?: boolean;
  lm?: Date;
  teamMain?: boolean;
  teamId?: string;
  _updatedAt?: Date;
}

export interface Me {
  _id: string;
  username: string;
  name?: string;
  roles: string[];
  status?: string;
  /** Which second factors are on (`/me`'s `services`; never any secret). */
  services?: { totp?: { enabled?: boolean }; email2fa?: { enabled?: boolean } };
}
