from mims.app import main

main()
