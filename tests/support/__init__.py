"""What more than one test module needs: scripted enquirers, the service under test,
the desk, the command line and known datasets. Test modules import from here, never
from each other."""
