import { navigate } from '../app';
import { t } from '../i18n';

/** Phone width only (CSS): back from a room or page to the list of rooms. */
export function BackToRooms() {
  return (
    <button class="icon back-home" aria-label={t('Back to rooms')} title={t('Back to rooms')} onClick={() => navigate({ name: 'home' })}>
      ←
    </button>
  );
}
