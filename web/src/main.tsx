import { render } from 'preact';
import { boot } from './app';
import './styles.css';
import { App } from './ui/App';

render(<App />, document.getElementById('app')!);
void boot();
