// Translations, gettext style: the English text is the key, so a missing translation falls back
// to English. The language is the browser's (`navigator.languages`), `?lng=de` or the
// `apogee.language` local setting overriding it.

type Dict = Record<string, string>;

const de: Dict = {
  Login: 'Anmelden',
  'Email or username': 'E-Mail oder Benutzername',
  Password: 'Passwort',
  'Two-factor authentication': 'Zwei-Faktor-Authentifizierung',
  'Enter the code sent to your e-mail': 'Code aus der E-Mail eingeben',
  'Enter the code from your authenticator app (or a backup code)': 'Code aus der Authenticator-App (oder einen Backup-Code) eingeben',
  Verify: 'Bestätigen',
  Back: 'Zurück',
  'New here?': 'Neu hier?',
  'Create an account': 'Konto erstellen',
  'Invalid two-factor code': 'Ungültiger Zwei-Faktor-Code',
  'Incorrect username or password': 'Benutzername oder Passwort falsch',
  Name: 'Name',
  Username: 'Benutzername',
  Email: 'E-Mail',
  Join: 'Beitreten',
  'Back to login': 'Zurück zur Anmeldung',
  Search: 'Suchen',
  Favorites: 'Favoriten',
  Channels: 'Kanäle',
  'Direct messages': 'Direktnachrichten',
  Directory: 'Verzeichnis',
  'Direct message': 'Direktnachricht',
  'Create channel': 'Kanal erstellen',
  Administration: 'Administration',
  'Enable desktop notifications': 'Desktop-Benachrichtigungen aktivieren',
  Logout: 'Abmelden',
  'Private (only invited members)': 'Privat (nur eingeladene Mitglieder)',
  Cancel: 'Abbrechen',
  Create: 'Erstellen',
  Start: 'Starten',
  'Search channels': 'Kanäle suchen',
  Open: 'Öffnen',
  '{n} members': '{n} Mitglieder',
  'Welcome, {name}': 'Willkommen, {name}',
  'Pick a room on the left, open the directory (⌕) to find channels, or create one (✎).':
    'Wähle links einen Raum, öffne das Verzeichnis (⌕) oder erstelle einen Kanal (✎).',
  'Connecting…': 'Verbinde…',
  'Waiting for the server — reconnecting…': 'Warte auf den Server — verbinde neu…',
  'Message {room}': 'Nachricht an {room}',
  'Reply in thread': 'Im Thread antworten',
  '{names} is typing…': '{names} schreibt…',
  '{names} are typing…': '{names} schreiben…',
  Thread: 'Thread',
  'Close thread': 'Thread schließen',
  '{n} reply': '{n} Antwort',
  '{n} replies': '{n} Antworten',
  'Search messages': 'Nachrichten suchen',
  'Close search': 'Suche schließen',
  'No messages found': 'Keine Nachrichten gefunden',
  'Add to favorites': 'Zu Favoriten hinzufügen',
  'Remove from favorites': 'Aus Favoriten entfernen',
  'Upload file': 'Datei hochladen',
  Send: 'Senden',
  'Editing message': 'Nachricht bearbeiten',
  'to cancel': 'zum Abbrechen',
  'This room is read only': 'Dieser Raum ist schreibgeschützt',
  'Drop files to upload': 'Dateien zum Hochladen ablegen',
  'Start of conversation': 'Anfang der Unterhaltung',
  'Loading…': 'Lädt…',
  Today: 'Heute',
  Yesterday: 'Gestern',
  'Add reaction': 'Reaktion hinzufügen',
  Edit: 'Bearbeiten',
  Delete: 'Löschen',
  'Delete this message?': 'Diese Nachricht löschen?',
  '(edited)': '(bearbeitet)',
  Users: 'Benutzer',
  Settings: 'Einstellungen',
  'Search users': 'Benutzer suchen',
  Roles: 'Rollen',
  Status: 'Status',
  'Edit roles': 'Rollen bearbeiten',
  Done: 'Fertig',
  Activate: 'Aktivieren',
  Deactivate: 'Deaktivieren',
  deactivated: 'deaktiviert',
  Save: 'Speichern',
  Star: 'Markieren',
  Unstar: 'Markierung entfernen',
  Pin: 'Anheften',
  Unpin: 'Lösen',
  Pinned: 'Angeheftet',
  'Copy link': 'Link kopieren',
  'Link copied': 'Link kopiert',
  Quote: 'Zitieren',
  Quoting: 'Zitat',
  'Cancel quote': 'Zitat verwerfen',
  'Unread messages': 'Ungelesene Nachrichten',
  'Jump to first unread': 'Zur ersten ungelesenen springen',
  'New messages since {time}': 'Neue Nachrichten seit {time}',
  'Message not found': 'Nachricht nicht gefunden',
  Online: 'Online',
  Away: 'Abwesend',
  Busy: 'Beschäftigt',
  Offline: 'Offline',
  Teams: 'Teams',
  Team: 'Team',
  'Create team': 'Team erstellen',
  'Team channels': 'Team-Kanäle',
  Members: 'Mitglieder',
  Add: 'Hinzufügen',
  Remove: 'Entfernen',
  Close: 'Schließen',
  'Add an existing room': 'Vorhandenen Raum hinzufügen',
  'Add a member by username': 'Mitglied per Benutzername hinzufügen',
  'No rooms in this team yet': 'Noch keine Räume in diesem Team',
  'Remove {name} from the team': '{name} aus dem Team entfernen',
  'My account': 'Mein Konto',
  Security: 'Sicherheit',
  'Authenticator app': 'Authenticator-App',
  'Set up an authenticator app': 'Authenticator-App einrichten',
  'Use an authenticator app (such as FreeOTP or Google Authenticator) for a second step at login.':
    'Nutze eine Authenticator-App (etwa FreeOTP oder Google Authenticator) als zweiten Schritt bei der Anmeldung.',
  'Scan this code with your authenticator app, or type in the key below, then enter the code it shows.':
    'Scanne diesen Code mit deiner Authenticator-App oder gib den Schlüssel unten ein, dann den angezeigten Code.',
  'QR code for your authenticator app': 'QR-Code für deine Authenticator-App',
  Key: 'Schlüssel',
  Code: 'Code',
  'Backup codes': 'Backup-Codes',
  'Keep these backup codes somewhere safe. Each one works once, in place of a code from your app.':
    'Bewahre diese Backup-Codes sicher auf. Jeder gilt einmal anstelle eines Codes aus deiner App.',
  'An authenticator app is set up.': 'Eine Authenticator-App ist eingerichtet.',
  '{n} backup codes left.': 'Noch {n} Backup-Codes.',
  'Code from your app or a backup code': 'Code aus deiner App oder ein Backup-Code',
  'New backup codes': 'Neue Backup-Codes',
  'Turn off': 'Ausschalten',
  'Authenticator app turned off': 'Authenticator-App ausgeschaltet',
  'Codes by e-mail': 'Codes per E-Mail',
  'Send me a code by e-mail when I log in': 'Bei der Anmeldung einen Code per E-Mail senden',
  'Confirm with your password': 'Mit deinem Passwort bestätigen',
};

export const LANGUAGES: Record<string, Dict> = { en: {}, de };

function pick(): string {
  const wanted = [
    new URLSearchParams(location.search).get('lng'),
    typeof localStorage !== 'undefined' ? localStorage.getItem('apogee.language') : null,
    ...(navigator.languages ?? [navigator.language]),
  ];
  for (const w of wanted) {
    const code = w?.toLowerCase().split('-')[0];
    if (code && code in LANGUAGES) return code;
  }
  return 'en';
}

let current = typeof navigator === 'undefined' ? 'en' : pick();

export function setLanguage(code: string): void {
  current = code in LANGUAGES ? code : 'en';
}

export function language(): string {
  return current;
}

/** The text for `key` in the current language, with `{name}` placeholders filled. */
export function t(key: string, vars: Record<string, string | number> = {}): string {
  const text = LANGUAGES[current]?.[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}
