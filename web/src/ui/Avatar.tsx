export function Avatar({ username, size = 36, status }: { username: string; size?: number; status?: string }) {
  return (
    <span class="avatar" style={{ width: `${size}px`, height: `${size}px` }}>
      <img src={`/avatar/${encodeURIComponent(username)}`} alt="" width={size} height={size} loading="lazy" />
      {status && <span class={`presence presence-${status}`} aria-label={status} title={status} />}
    </span>
  );
}
