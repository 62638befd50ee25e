import { render } from 'preact';
import { boot } from './app';
import { language } from './i18n';
import './styles.css';
import { App } from './ui/App';

document.documentElement.lang = language();
render(<App />, document.getElementById('app')!);
void boot();
